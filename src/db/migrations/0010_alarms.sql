-- Alarms (docs/alarms.md): rules, the state of each alarm, every transition as history, silences,
-- and an outbox that makes each notification arrive once. The evaluator (in the API process, or
-- `evf alarms run`) writes as evf_api; one evaluator leads at a time, fenced by alarm_leader.

CREATE TABLE alarm_rules (
  id          text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_.:-]{1,120}$'),
  kind        text        NOT NULL CHECK (kind IN ('spec', 'spc', 'stale', 'pipeline')),
  station     text,
  measurement text,
  severity    text        NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
  -- the pending period: the condition must hold this long before the alarm is raised
  for_ms      integer     NOT NULL DEFAULT 0 CHECK (for_ms >= 0),
  -- hysteresis (spec: back inside the limits by this much, in the measurement's unit)
  deadband    double precision NOT NULL DEFAULT 0 CHECK (deadband >= 0),
  -- kind-specific: spc {we, subgroup, centre, sigma, baseline}, stale {intervals, min_silent_ms},
  -- pipeline {check, threshold}
  params      jsonb       NOT NULL DEFAULT '{}',
  enabled     boolean     NOT NULL DEFAULT true,
  -- 'catalog': made from the catalog (kept when an operator edits it); 'operator': made by hand
  origin      text        NOT NULL DEFAULT 'operator' CHECK (origin IN ('catalog', 'operator')),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text        NOT NULL DEFAULT current_user,
  CHECK ((kind IN ('spec', 'spc')) <= (station IS NOT NULL AND measurement IS NOT NULL))
);
COMMENT ON TABLE alarm_rules IS 'What raises an alarm: spec limits, Western Electric rules, silent sensors, pipeline health.';

-- One row per alarm: a rule, and for a rule over many sensors (stale) the sensor it is about.
CREATE TABLE alarms (
  rule_id       text        NOT NULL REFERENCES alarm_rules ON DELETE CASCADE,
  subject       text        NOT NULL DEFAULT '',
  station       text,
  measurement   text,
  state         text        NOT NULL DEFAULT 'NORMAL'
                CHECK (state IN ('NORMAL', 'UNACK', 'ACKED', 'RTNUN', 'SHELVED', 'OUT_OF_SERVICE')),
  active        boolean     NOT NULL DEFAULT false,
  pending_since timestamptz,
  shelved_until timestamptz,
  value         double precision,
  -- the evaluator's own state for this alarm (an SPC series, a hysteresis flag), so a restart resumes it
  eval          jsonb       NOT NULL DEFAULT '{}',
  changed_at    timestamptz NOT NULL DEFAULT now(),
  -- when people were last told (the repeat interval runs from it)
  notified_at   timestamptz,
  PRIMARY KEY (rule_id, subject)
);
CREATE INDEX alarms_annunciated ON alarms (state) WHERE state <> 'NORMAL';
COMMENT ON TABLE alarms IS 'Every alarm and its ISA-18.2 state (NORMAL, UNACK, ACKED, RTNUN, SHELVED, OUT_OF_SERVICE).';

-- Every transition, kept: who, when, the value, the rule. `notify` marks the ones people are told
-- of; `routed_at` is set once the router has put them in a message (or found them silenced).
CREATE TABLE alarm_events (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rule_id     text        NOT NULL,
  subject     text        NOT NULL DEFAULT '',
  station     text,
  measurement text,
  kind        text        NOT NULL,
  severity    text        NOT NULL,
  from_state  text        NOT NULL,
  to_state    text        NOT NULL,
  at          timestamptz NOT NULL,
  by_whom     text,
  comment     text,
  value       double precision,
  reason      text        NOT NULL,
  notify      boolean     NOT NULL DEFAULT false,
  -- when the evaluator committed it (at − recorded_at: how long the reading took to raise it)
  recorded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  routed_at   timestamptz,
  silenced_by text
);
CREATE INDEX alarm_events_unrouted ON alarm_events (id) WHERE notify AND routed_at IS NULL;
CREATE INDEX alarm_events_at ON alarm_events (at DESC);
CREATE INDEX alarm_events_alarm ON alarm_events (rule_id, subject, id DESC);
COMMENT ON TABLE alarm_events IS 'Every change of state of every alarm: the alarm history.';

-- Silences and maintenance windows (a silence that starts later): matching notices are recorded, not sent.
CREATE TABLE alarm_silences (
  id           text        PRIMARY KEY,
  stations     text[]      NOT NULL DEFAULT '{}',
  measurements text[]      NOT NULL DEFAULT '{}',
  severities   text[]      NOT NULL DEFAULT '{}',
  rules        text[]      NOT NULL DEFAULT '{}',
  starts_at    timestamptz NOT NULL,
  ends_at      timestamptz NOT NULL,
  created_by   text        NOT NULL,
  comment      text        NOT NULL DEFAULT '',
  created_at   timestamptz NOT NULL DEFAULT now(),
  expired_at   timestamptz,
  CHECK (ends_at > starts_at)
);

-- The outbox: one row per message to one receiver, written in the same transaction that routes
-- its notices; a deliverer sends it, retrying with backoff until the receiver takes it.
CREATE TABLE alarm_outbox (
  id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  key             text        NOT NULL UNIQUE,
  receiver        text        NOT NULL,
  kind            text        NOT NULL CHECK (kind IN ('group', 'flood-summary', 'repeat')),
  station         text,
  notices         integer     NOT NULL,
  payload         jsonb       NOT NULL,
  status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'expired')),
  attempts        integer     NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  sent_at         timestamptz
);
CREATE INDEX alarm_outbox_pending ON alarm_outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX alarm_outbox_receiver_time ON alarm_outbox (receiver, created_at DESC);

-- How far the evaluator has read each Kafka partition's loaded rows (its cursor, as etl_offsets is the ETL's).
CREATE TABLE alarm_offsets (
  topic       text    NOT NULL,
  partition   integer NOT NULL,
  next_offset bigint  NOT NULL,
  PRIMARY KEY (topic, partition)
);

-- The fence: one evaluator leads; taking the lead raises the epoch, and every write of the
-- evaluator checks it still holds the epoch it took, so a leader that lost its lock cannot write.
CREATE TABLE alarm_leader (
  singleton boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  epoch     bigint      NOT NULL DEFAULT 0,
  holder    text,
  since     timestamptz,
  -- the leader's clock tick: old means no evaluator runs (the watchdog's signal)
  heartbeat_at timestamptz
);
INSERT INTO alarm_leader DEFAULT VALUES;

-- Operators may add 'operate' credentials: acknowledge, shelve, silence.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_scopes_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_scopes_check
  CHECK (scopes <@ ARRAY['read', 'export', 'admin', 'metrics', 'operate']);

GRANT SELECT, INSERT, UPDATE, DELETE ON alarm_rules, alarms, alarm_silences, alarm_offsets TO evf_api;
GRANT SELECT, INSERT, UPDATE ON alarm_events, alarm_outbox, alarm_leader TO evf_api;
