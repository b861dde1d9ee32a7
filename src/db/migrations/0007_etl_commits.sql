-- One row per load transaction that loaded readings: when it was made and how many readings it
-- loaded. /pipeline/status reads the last seconds of it for the current ingest rate (issue 19:
-- a window's average was shown as the rate); `db maintain` keeps the last hour.
CREATE TABLE etl_commits (
  committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  rows         integer     NOT NULL
);
CREATE INDEX etl_commits_at_idx ON etl_commits (committed_at);
GRANT SELECT, INSERT ON etl_commits TO evf_etl;
GRANT SELECT ON etl_commits TO evf_api;
