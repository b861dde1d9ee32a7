export { PlantSimulator, prng, type Reading } from './generator.ts'
export { runSimulator, type SimulatorSummary, toMessage } from './run.ts'
