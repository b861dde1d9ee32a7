/**
 * The servers evf runs itself, apart from being their client (kafka/) and from data access (db/):
 * one embedded Kafka broker or a KRaft cluster of them, the PostgreSQL primary and its hot
 * standby, the database roles' logins, the broker's TLS keystore, and the demo's MQTT broker (Debian's Mosquitto); all run the one way
 * `server.ts` says (orphan stop, spawn, wait until it answers, log tail, ordered stop).
 */
export {
  BROKER_STOP,
  type BrokerOptions,
  brokerOrphan,
  type EmbeddedBroker,
  newClusterId,
  startEmbeddedKafka,
} from './kafka-broker.ts'
export { KafkaCluster, type NodeState, nodePorts } from './kafka-cluster.ts'
export { brokerTls, exportedCaFile, type KafkaTls, makeDevKeystore } from './kafka-tls.ts'
export {
  type EmbeddedMqtt,
  MQTT_USERS,
  type MqttUser,
  mosquittoBinary,
  readMqttPasswords,
  startEmbeddedMosquitto,
} from './mosquitto.ts'
export {
  DATABASE,
  type EmbeddedDatabase,
  POSTGRES_STOP,
  postgresOrphan,
  startEmbeddedPostgres,
} from './postgres.ts'
export { provisionRoleLogins, ROLES, type Role, type RoleUrls } from './roles.ts'
export {
  freePort,
  type Orphan,
  portAnswers,
  type Readiness,
  type RunningServer,
  readPid,
  type ServerSpec,
  startServer,
  stopOrphan,
  stopServer,
  tailOf,
  untilReady,
} from './server.ts'
export { startStandby } from './standby.ts'
