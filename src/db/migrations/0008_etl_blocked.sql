-- A partition the ETL cannot go on with: the record batch at its position could not be decoded
-- (a codec the client lacks, corrupt bytes). The ETL writes it when it holds the partition back,
-- with the batch's raw bytes; /ready, /metrics and /pipeline/status show it until an operator
-- moves past it with `evf etl skip`, which turns it into a dead letter in one transaction with
-- the position it moves. A row the position has already passed no longer counts.
CREATE TABLE etl_blocked (
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  first_offset bigint      NOT NULL,
  last_offset  bigint      NOT NULL,
  reason       text        NOT NULL,
  raw          bytea       NOT NULL,
  detected_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);
GRANT SELECT, INSERT, UPDATE ON etl_blocked TO evf_etl;
GRANT SELECT ON etl_blocked TO evf_api;
