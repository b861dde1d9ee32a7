-- The reference system's table, plus what exactly-once loading needs.
-- id, station, data, created_at are the reference columns and keep their meaning:
-- data is the transformed reading (rounded, with processed_at), created_at the load time.
CREATE TABLE sensor_data (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  station          text        NOT NULL,
  data             jsonb       NOT NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  reading_time     timestamptz NOT NULL,
  source_topic     text        NOT NULL,
  source_partition integer     NOT NULL,
  source_offset    bigint      NOT NULL,
  -- The safety net, not the mechanism: offsets in etl_offsets are what prevent doubles.
  CONSTRAINT sensor_data_source_key UNIQUE (source_topic, source_partition, source_offset)
);

-- /sensor-data: newest first, optionally for one station.
CREATE INDEX sensor_data_station_id_idx ON sensor_data (station, id DESC);

-- The next Kafka offset to load for each partition. Advanced in the same transaction as the
-- rows (and dead letters) it covers, and only if it still holds the value the loader read:
-- a loader that lost its partition to another worker cannot commit.
CREATE TABLE etl_offsets (
  topic       text        NOT NULL,
  partition   integer     NOT NULL,
  next_offset bigint      NOT NULL CHECK (next_offset >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);

-- Messages that could not be loaded, kept with their raw bytes and source coordinates.
CREATE TABLE dead_letters (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  topic        text        NOT NULL,
  partition    integer     NOT NULL,
  "offset"     bigint      NOT NULL,
  message_key  bytea,
  message_value bytea,
  headers      jsonb       NOT NULL DEFAULT '{}',
  reason_code  text        NOT NULL,
  reason       text        NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT dead_letters_source_key UNIQUE (topic, partition, "offset")
);
