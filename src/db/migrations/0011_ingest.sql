-- Devices in (issue 23): what `evf ingest` says about each of its sources, and the sensors a
-- source has declared stale (a Sparkplug NDEATH or DDEATH). Written by ingest, read by the API
-- (/metrics, /pipeline/status, /ready, /stations/{s}/latest, the dashboard).

-- One row per source (a station's MQTT topic filter, Sparkplug node, OPC UA server), kept by
-- the ingest process that reads it; `heartbeat_at` old means no ingest process runs it.
CREATE TABLE ingest_sources (
  source          text        PRIMARY KEY,
  kind            text        NOT NULL CHECK (kind IN ('mqtt', 'sparkplug', 'opcua')),
  stations        text[]      NOT NULL,
  endpoint        text        NOT NULL,
  connected       boolean     NOT NULL DEFAULT false,
  messages_in     bigint      NOT NULL DEFAULT 0,
  acknowledged    bigint      NOT NULL DEFAULT 0,
  -- readings produced to Kafka, and values dead-lettered by quality
  produced        bigint      NOT NULL DEFAULT 0,
  -- values a source says it could not deliver (an OPC UA gap, a Sparkplug seq gap)
  missed          bigint      NOT NULL DEFAULT 0,
  last_message_at timestamptz,
  last_error      text,
  state_since     timestamptz NOT NULL DEFAULT now(),
  heartbeat_at    timestamptz NOT NULL DEFAULT now()
);

-- Sensors whose source said they are offline: their last values are stale, not quiet.
CREATE TABLE sensor_states (
  station    text        NOT NULL,
  sensor_id  text        NOT NULL,
  stale      boolean     NOT NULL,
  since      timestamptz NOT NULL,
  reason     text        NOT NULL,
  PRIMARY KEY (station, sensor_id)
);

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evf_ingest') THEN
    BEGIN
      CREATE ROLE evf_ingest NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created concurrently by a migration of another database
    END;
  END IF;
END $$;
GRANT USAGE ON SCHEMA public TO evf_ingest;
GRANT SELECT ON catalog_versions, catalog_stations, catalog_limits TO evf_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON ingest_sources, sensor_states TO evf_ingest;
GRANT SELECT ON ingest_sources, sensor_states TO evf_api;
