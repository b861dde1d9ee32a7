export { type AclScope, componentGrants, grantComponentAcls } from './acls.ts'
export {
  type EmbeddedBroker,
  newClusterId,
  setScramCredentials,
  startEmbeddedKafka,
  stopOrphan as stopOrphanBroker,
} from './broker.ts'
export { brokerList, connection, createAdmin, createConsumer, createProducer } from './clients.ts'
export { KafkaCluster, type NodeState, nodePorts } from './cluster.ts'
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
export { brokerTls, exportedCaFile, type KafkaTls, makeDevKeystore } from './tls.ts'
export { ensureTopics } from './topics.ts'
