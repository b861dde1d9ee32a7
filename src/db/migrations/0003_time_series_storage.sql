-- Storage for a plant's history: sensor_data becomes a table range-partitioned by reading time
-- (one partition per UTC day, created ahead), rollups at 1 minute and 1 hour kept by the ETL in
-- its load transaction, ETL run and lag bookkeeping, and least-privilege roles.
-- The BI views (schema bi) are generated from the station catalog by src/db/queries/catalog.ts and
-- re-created after every migration run, so they follow the catalog.

-- 1. Partitioned sensor_data, same columns. A partitioned table's unique keys must contain the
-- partition key, so reading_time joins the primary key and the source key. The source key stays
-- an exact safety net: a redelivered message has the same reading time, hence the same partition.
ALTER TABLE sensor_data RENAME TO sensor_data_unpartitioned;
ALTER TABLE sensor_data_unpartitioned RENAME CONSTRAINT sensor_data_source_key TO sensor_data_unpartitioned_source_key;
ALTER INDEX sensor_data_station_id_idx RENAME TO sensor_data_unpartitioned_station_id_idx;

CREATE TABLE sensor_data (
  id               bigint      GENERATED ALWAYS AS IDENTITY,
  station          text        NOT NULL,
  data             jsonb       NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  reading_time     timestamptz NOT NULL,
  source_topic     text        NOT NULL,
  source_partition integer     NOT NULL,
  source_offset    bigint      NOT NULL,
  PRIMARY KEY (id, reading_time),
  CONSTRAINT sensor_data_source_key UNIQUE (source_topic, source_partition, source_offset, reading_time)
) PARTITION BY RANGE (reading_time);

COMMENT ON TABLE sensor_data IS
  'One row per reading (the reference columns id, station, data, created_at), partitioned by UTC day of reading_time. BI tools: use the typed views in schema bi.';

-- Indexes, chosen for the API's queries (docs/storage.md has the measurements):
-- /sensor-data and /stations/{s}/latest: newest first, optionally per station.
CREATE INDEX sensor_data_station_id_idx ON sensor_data (station, id DESC);
-- time windows (/stats/counts edges, /export, the data-quality silence check), per station:
-- a b-tree, since BRIN cannot serve "latest per station" and measured slower for narrow windows.
CREATE INDEX sensor_data_station_time_idx ON sensor_data (station, reading_time);
-- whole-table time ranges (/export without a station, retention checks): BRIN is ~1000x smaller.
CREATE INDEX sensor_data_time_brin ON sensor_data USING brin (reading_time) WITH (pages_per_range = 32);

-- Creates the daily partitions covering [p_from, p_to]. SECURITY DEFINER so that the ETL's role,
-- which may insert rows but not create tables, can still extend the table for new days.
CREATE FUNCTION sensor_data_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  d date;
  created integer := 0;
BEGIN
  IF p_to < p_from THEN RETURN 0; END IF;
  IF p_to - p_from > interval '3700 days' THEN
    RAISE EXCEPTION 'refusing to create % daily partitions at once', (p_to::date - p_from::date);
  END IF;
  FOR d IN SELECT generate_series((p_from AT TIME ZONE 'UTC')::date, (p_to AT TIME ZONE 'UTC')::date, interval '1 day')::date LOOP
    IF to_regclass(format('sensor_data_%s', to_char(d, 'YYYYMMDD'))) IS NULL THEN
      BEGIN
        EXECUTE format('CREATE TABLE %I PARTITION OF sensor_data FOR VALUES FROM (%L) TO (%L)',
          format('sensor_data_%s', to_char(d, 'YYYYMMDD')),
          (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
        created := created + 1;
      EXCEPTION WHEN duplicate_table THEN
        NULL; -- another worker created it first
      END;
    END IF;
  END LOOP;
  RETURN created;
END $$;

-- Drops every daily partition that ends at or before p_cutoff; returns their names.
CREATE FUNCTION sensor_data_drop_partitions_before(p_cutoff timestamptz)
RETURNS SETOF text LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  part text;
BEGIN
  FOR part IN
    SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'sensor_data'::regclass AND c.relname ~ '^sensor_data_\d{8}$'
      AND (to_date(substr(c.relname, 13), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC' <= p_cutoff
    ORDER BY c.relname
  LOOP
    EXECUTE format('DROP TABLE %I', part);
    RETURN NEXT part;
  END LOOP;
END $$;

-- Move what was loaded before this migration, keeping ids, then continue the identity after them.
SELECT sensor_data_ensure_partitions(
  coalesce((SELECT min(reading_time) FROM sensor_data_unpartitioned), now()) - interval '1 day',
  greatest(coalesce((SELECT max(reading_time) FROM sensor_data_unpartitioned), now()), now()) + interval '2 days');
INSERT INTO sensor_data OVERRIDING SYSTEM VALUE
  SELECT id, station, data, created_at, reading_time, source_topic, source_partition, source_offset
  FROM sensor_data_unpartitioned;
SELECT setval(pg_get_serial_sequence('sensor_data', 'id'),
  greatest((SELECT max(id) FROM sensor_data_unpartitioned), 0) + 1, false);
DROP TABLE sensor_data_unpartitioned;

-- The station catalog's fields as a table (kept equal to src/catalog by the migrator after every
-- run): the rollup rebuild and the BI tools read units and specification limits from it.
CREATE TABLE catalog_fields (
  station     text    NOT NULL,
  field       text    NOT NULL,
  position    integer NOT NULL,
  kind        text    NOT NULL CHECK (kind IN ('number', 'integer', 'enum')),
  unit        text    NOT NULL,
  description text    NOT NULL,
  spec_min    double precision,
  spec_max    double precision,
  plausible_min double precision,
  plausible_max double precision,
  PRIMARY KEY (station, field)
);

-- 2. Rollups per station, field and bucket. Numeric fields: category '' with count, sum, sum of
-- squares, min, max (mean and standard deviation derive from them, and buckets add up exactly).
-- Categorical fields (inspection_result): one row per value, n = how many.
CREATE TABLE rollup_1m (
  station  text             NOT NULL,
  field    text             NOT NULL,
  category text             NOT NULL DEFAULT '',
  bucket   timestamptz      NOT NULL,
  n        bigint           NOT NULL,
  sum      double precision,
  sumsq    double precision,
  min      double precision,
  max      double precision,
  PRIMARY KEY (station, field, category, bucket)
);
CREATE TABLE rollup_1h (LIKE rollup_1m INCLUDING ALL);
COMMENT ON TABLE rollup_1m IS 'Per station, field and minute of reading time: kept by the ETL in the load transaction.';
COMMENT ON TABLE rollup_1h IS 'Per station, field and hour of reading time: kept by the ETL in the load transaction.';

-- Recomputes the rollups of [p_from, p_to) from sensor_data (whole hours): for backfills done
-- outside the ETL (bulk SQL loads, benchmarks) and to repair after manual edits.
CREATE FUNCTION rollups_rebuild(p_from timestamptz, p_to timestamptz)
RETURNS bigint LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  lo timestamptz := date_trunc('hour', p_from);
  hi timestamptz := date_trunc('hour', p_to) + CASE WHEN p_to = date_trunc('hour', p_to) THEN interval '0' ELSE interval '1 hour' END;
  rows_1m bigint;
BEGIN
  DELETE FROM rollup_1m WHERE bucket >= lo AND bucket < hi;
  DELETE FROM rollup_1h WHERE bucket >= lo AND bucket < hi;
  INSERT INTO rollup_1m (station, field, category, bucket, n, sum, sumsq, min, max)
  SELECT s.station, f.field, CASE WHEN f.kind = 'enum' THEN x.v #>> '{}' ELSE '' END,
         date_trunc('minute', s.reading_time), count(*),
         sum(x.num), sum(x.num * x.num), min(x.num), max(x.num)
  FROM sensor_data s
  JOIN catalog_fields f ON f.station = s.station
  CROSS JOIN LATERAL (
    SELECT s.data -> f.field AS v,
           CASE WHEN f.kind <> 'enum' THEN (s.data -> f.field)::double precision END AS num
  ) x
  WHERE s.reading_time >= lo AND s.reading_time < hi AND x.v IS NOT NULL
  GROUP BY 1, 2, 3, 4;
  GET DIAGNOSTICS rows_1m = ROW_COUNT;
  INSERT INTO rollup_1h (station, field, category, bucket, n, sum, sumsq, min, max)
  SELECT station, field, category, date_trunc('hour', bucket), sum(n), sum(sum), sum(sumsq), min(min), max(max)
  FROM rollup_1m WHERE bucket >= lo AND bucket < hi GROUP BY 1, 2, 3, 4;
  RETURN rows_1m;
END $$;

-- 3. Pipeline bookkeeping for /ready, /pipeline/status and /metrics.
-- The partition's log-end offset the ETL last saw: lag = end_offset - next_offset.
ALTER TABLE etl_offsets ADD COLUMN end_offset bigint, ADD COLUMN end_offset_at timestamptz;

-- One row per ETL run (bounded runs from the scheduler or Airflow; a continuous ETL records its
-- start and keeps its row current).
CREATE TABLE etl_runs (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mode         text        NOT NULL,
  started_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  status       text        NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'ok', 'failed')),
  rows         bigint      NOT NULL DEFAULT 0,
  dead_letters bigint      NOT NULL DEFAULT 0,
  error        text
);
CREATE INDEX etl_runs_started_idx ON etl_runs (started_at DESC);

-- 4. Least privilege. Group roles (NOLOGIN) hold the privileges; `evf db roles` gives them a
-- login and a password. Roles are per server, so they may exist already (another database).
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['evf_etl', 'evf_api', 'evf_bi'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created concurrently by a migration of another database
      END;
    END IF;
  END LOOP;
END $$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM evf_etl, evf_api, evf_bi;
-- ETL: loads rows, dead letters, rollups; moves offsets; records runs. Never deletes or alters.
GRANT USAGE ON SCHEMA public TO evf_etl, evf_api;
GRANT SELECT, INSERT ON sensor_data TO evf_etl;
GRANT SELECT, INSERT, UPDATE ON dead_letters, etl_offsets, rollup_1m, rollup_1h, etl_runs TO evf_etl;
GRANT SELECT ON schema_migrations, catalog_fields TO evf_etl, evf_api;
GRANT EXECUTE ON FUNCTION sensor_data_ensure_partitions(timestamptz, timestamptz) TO evf_etl;
-- API: reads everything it serves, writes nothing.
GRANT SELECT ON sensor_data, dead_letters, etl_offsets, rollup_1m, rollup_1h, etl_runs TO evf_api;
-- BI: the views of schema bi only (granted by src/db/queries/catalog.ts, which creates them).
REVOKE EXECUTE ON FUNCTION sensor_data_drop_partitions_before(timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION rollups_rebuild(timestamptz, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION sensor_data_ensure_partitions(timestamptz, timestamptz) FROM PUBLIC;
