export { type MeanShift, PlantSimulator, prng } from './generator.ts'
export { runSimulator, type SimulatorSummary, toMessage } from './run.ts'
