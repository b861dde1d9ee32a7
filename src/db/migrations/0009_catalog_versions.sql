-- The plant catalog as data (docs/catalog.md): every applied version of the catalog file, the
-- stations it ever had (a retired one keeps its history), and each measurement's spec limits over
-- time, so a limit changed today leaves yesterday's readings judged by yesterday's limits.

CREATE TABLE catalog_versions (
  version    integer     PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by text        NOT NULL DEFAULT current_user,
  -- the file it came from and its SHA-256: `stack up` applies EVF_CATALOG again only when it changed
  source     text        NOT NULL,
  sha256     text        NOT NULL,
  -- json, not jsonb: the file's order of stations and measurements is kept (jsonb sorts keys)
  document   json        NOT NULL,
  diff       json        NOT NULL
);
COMMENT ON TABLE catalog_versions IS 'Every applied version of the plant catalog, the newest in force.';

CREATE TABLE catalog_stations (
  station         text    PRIMARY KEY,
  line            text    NOT NULL,
  line_name       text    NOT NULL,
  area            text    NOT NULL,
  area_name       text    NOT NULL,
  -- its definition in the newest version that had it
  definition      json    NOT NULL,
  first_version   integer NOT NULL REFERENCES catalog_versions,
  retired_version integer REFERENCES catalog_versions,
  retired_at      timestamptz
);
COMMENT ON TABLE catalog_stations IS 'Every station the catalog ever had; retired ones take no readings and keep their history.';

CREATE TABLE catalog_limits (
  station    text             NOT NULL,
  field      text             NOT NULL,
  valid_from timestamptz      NOT NULL,
  lsl        double precision,
  target     double precision,
  usl        double precision,
  version    integer          NOT NULL REFERENCES catalog_versions,
  PRIMARY KEY (station, field, valid_from)
);
COMMENT ON TABLE catalog_limits IS 'Spec limits of each measurement from valid_from until the next row (the first from -infinity).';

ALTER TABLE catalog_fields DROP CONSTRAINT catalog_fields_kind_check;
ALTER TABLE catalog_fields ADD CHECK (kind IN ('number', 'integer', 'enum', 'boolean'));
ALTER TABLE catalog_fields
  ADD COLUMN ucum text,
  ADD COLUMN target double precision,
  ADD COLUMN decimals integer,
  ADD COLUMN retired boolean NOT NULL DEFAULT false;

-- Categorical measurements are enums and booleans: one rollup row per value.
CREATE OR REPLACE FUNCTION rollups_rebuild(p_from timestamptz, p_to timestamptz)
RETURNS bigint LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
  lo timestamptz := date_trunc('hour', p_from);
  hi timestamptz := date_trunc('hour', p_to) + CASE WHEN p_to = date_trunc('hour', p_to) THEN interval '0' ELSE interval '1 hour' END;
  rows_1m bigint;
BEGIN
  DELETE FROM rollup_1m WHERE bucket >= lo AND bucket < hi;
  DELETE FROM rollup_1h WHERE bucket >= lo AND bucket < hi;
  INSERT INTO rollup_1m (station, field, category, bucket, n, sum, sumsq, min, max)
  SELECT s.station, f.field, CASE WHEN f.kind IN ('enum', 'boolean') THEN x.v #>> '{}' ELSE '' END,
         date_trunc('minute', s.reading_time), count(*),
         sum(x.num), sum(x.num * x.num), min(x.num), max(x.num)
  FROM sensor_data s
  JOIN catalog_fields f ON f.station = s.station
  CROSS JOIN LATERAL (
    SELECT s.data -> f.field AS v,
           CASE WHEN f.kind IN ('number', 'integer') THEN (s.data -> f.field)::double precision END AS num
  ) x
  WHERE s.reading_time >= lo AND s.reading_time < hi AND x.v IS NOT NULL
  GROUP BY 1, 2, 3, 4;
  GET DIAGNOSTICS rows_1m = ROW_COUNT;
  INSERT INTO rollup_1h (station, field, category, bucket, n, sum, sumsq, min, max)
  SELECT station, field, category, date_trunc('hour', bucket), sum(n), sum(sum), sum(sumsq), min(min), max(max)
  FROM rollup_1m WHERE bucket >= lo AND bucket < hi GROUP BY 1, 2, 3, 4;
  RETURN rows_1m;
END $$;
REVOKE EXECUTE ON FUNCTION rollups_rebuild(timestamptz, timestamptz) FROM PUBLIC;

-- The simulator reads the catalog it simulates, and nothing else.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'evf_sim') THEN
    BEGIN
      CREATE ROLE evf_sim NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL; -- created concurrently by a migration of another database
    END;
  END IF;
END $$;
GRANT USAGE ON SCHEMA public TO evf_sim;
GRANT SELECT ON catalog_versions, catalog_stations, catalog_limits TO evf_etl, evf_api, evf_sim;
