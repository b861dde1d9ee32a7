-- What is known of the ETL's progress, apart from its positions. etl_offsets is written by the
-- load transactions alone (its rows are locked while a batch loads); the log ends and the
-- watchdog's observations live here, so that observing never waits for — nor blocks — a load,
-- and a worker frozen in the middle of a transaction is still seen (src/etl/watchdog.ts).
CREATE TABLE etl_lag (
  topic            text        NOT NULL,
  partition        integer     NOT NULL,
  -- the partition's log-end offset and when it was read: lag = end_offset - etl_offsets.next_offset
  end_offset       bigint      NOT NULL,
  end_offset_at    timestamptz NOT NULL,
  -- the position seen at that moment, and the last time it was seen moving (or caught up)
  seen_next_offset bigint      NOT NULL,
  progress_at      timestamptz NOT NULL,
  -- written by the continuous ETL's watchdog (true), or by a bounded run (false: between two
  -- scheduled runs messages wait by design, which is not a stall)
  watched          boolean     NOT NULL,
  PRIMARY KEY (topic, partition)
);
ALTER TABLE etl_offsets DROP COLUMN end_offset, DROP COLUMN end_offset_at;
GRANT SELECT, INSERT, UPDATE ON etl_lag TO evf_etl;
GRANT SELECT ON etl_lag TO evf_api;
