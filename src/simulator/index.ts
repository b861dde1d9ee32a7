export { impliedSource, SIM_SPARKPLUG_GROUP, simNodeId, simTopic } from './devices.ts'
export { type MeanShift, PlantSimulator, prng, simulatedSensors } from './generator.ts'
export { runSimulator, type SimulatorSummary, toMessage } from './run.ts'
