/** Being a Kafka client: the clients, the consumer, topics, the users' credentials and ACLs (the brokers themselves are services/). */
export { type AclScope, componentGrants, grantComponentAcls } from './acls.ts'
export { brokerList, connection, createAdmin, createConsumer, createProducer } from './clients.ts'
export { EvfConsumer, type UndecodableBatch } from './consumer.ts'
export {
  KAFKA_USERS,
  type KafkaSecrets,
  type KafkaSettings,
  type KafkaUser,
  kafkaEnv,
  kafkaSecrets,
  kafkaSecretsFile,
  readKafkaSecrets,
  scramLogin,
} from './credentials.ts'
export { setScramCredentials } from './scram.ts'
export { ensureTopics, prefixedTopics } from './topics.ts'
