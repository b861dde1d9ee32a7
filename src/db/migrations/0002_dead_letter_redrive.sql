-- Dead letters can be re-driven after a fix (`evf etl dead-letters retry`): each attempt is
-- counted, and a re-driven message points at the row it became.
ALTER TABLE dead_letters
  ADD COLUMN attempts        integer     NOT NULL DEFAULT 0,
  ADD COLUMN last_attempt_at timestamptz,
  ADD COLUMN resolved_at     timestamptz,
  ADD COLUMN resolved_row_id bigint;

CREATE INDEX dead_letters_open_idx ON dead_letters (reason_code, id) WHERE resolved_at IS NULL;
CREATE INDEX dead_letters_created_idx ON dead_letters (created_at);
