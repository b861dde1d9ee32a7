export { type EmbeddedBroker, newClusterId, startEmbeddedKafka } from './broker.ts'
export { brokerList, createAdmin, createConsumer, createProducer } from './clients.ts'
export { ensureTopics } from './topics.ts'
