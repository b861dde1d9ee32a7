-- The continuous ETL's watchdog (src/etl/watchdog.ts) records when it first saw a partition
-- behind its log end since the partition's last commit; every commit clears it. A partition is
-- stalled when it is behind and has been for longer than etlStallSec: /ready, /metrics,
-- /pipeline/status and the dashboard read the same predicate (see the API's etl health query).
ALTER TABLE etl_offsets ADD COLUMN behind_since timestamptz;
