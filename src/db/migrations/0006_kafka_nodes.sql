-- The embedded Kafka cluster's nodes as the stack sees them (`stack up --kafka-nodes 3`): a node
-- that dies is marked down until it is started again. /ready, /metrics and /pipeline/status read
-- it; empty with one node or an existing cluster (KAFKA_BROKERS).
CREATE TABLE kafka_nodes (
  node_id  integer     PRIMARY KEY,
  address  text        NOT NULL,
  up       boolean     NOT NULL,
  since    timestamptz NOT NULL,
  restarts integer     NOT NULL DEFAULT 0
);
GRANT SELECT ON kafka_nodes TO evf_api;
