"""EV factory ETL, orchestrated by Apache Airflow 3.

    check_services >> load[<one mapped task per station topic>] >> data_quality >> refresh_summaries

The heavy lifting stays in the project's CLI (``evf etl run --topic T`` loads a topic from Kafka
into PostgreSQL exactly once and prints one JSON summary line); this file only schedules it,
checks the results and stays thin on purpose.

Settings: an environment variable wins, else an Airflow Variable of the same name, else the default.

    EVF_AIRFLOW_SCHEDULE          cron or preset of the DAG (default "*/5 * * * *"; "none" = manual)
    EVF_REPO_ROOT                 the project checkout (default: two levels above this file's folder)
    EVF_NODE                      node binary (default "node", looked up on PATH)
    EVF_CLI                       the CLI script (default <EVF_REPO_ROOT>/dist/cli.js)
    EVF_TOPICS                    comma-separated topics (default: every station's topic, from evf)
    EVF_TOPIC_PREFIX              prefix of the station topics (default: evf's, "sensor.")
    KAFKA_BROKERS, DATABASE_URL   as for the CLI; unset: the endpoints of the running `evf stack`
    EVF_KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD, KAFKA_CA_FILE
                                  the ETL's Kafka login, as for the CLI (`stack up` passes user `etl`'s);
                                  unset next to a running stack: the CLI takes `etl`'s from its data dir
    EVF_DATA_DIR                  where that stack records them (default <EVF_REPO_ROOT>/.stack)
    EVF_DQ_MAX_DEAD_LETTER_RATE   default 0.05
    EVF_DQ_MAX_SILENCE_MINUTES    default 15
    EVF_REFRESH_COMMAND           default "$EVF_NODE $EVF_CLI db maintain"

Schedule, paths and topics are read when the file is parsed (they shape the DAG); endpoints and
thresholds are read when a task runs. The stations and their topics are the project's catalog:
the file asks ``evf catalog --json`` for them when it is parsed, and fails to import, saying
why, when it cannot. Imports are Airflow 3's: the Task SDK (``airflow.sdk``) and
the standard provider (``airflow.providers.standard``), not the removed ``airflow.operators.*``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Variable, task
from airflow.sdk.exceptions import AirflowFailException


def setting(name: str, default: str = "") -> str:
    """Environment variable, else Airflow Variable, else ``default`` (empty values count as unset)."""
    value = os.environ.get(name, "")
    if value:
        return value
    try:
        value = Variable.get(name, default="")
    except Exception:  # no Variable backend reachable (e.g. a bare `python -c` DagBag parse)
        value = ""
    return value or default


# --- parse-time settings: they shape the DAG -------------------------------------------------
REPO_ROOT = setting("EVF_REPO_ROOT", str(Path(__file__).resolve().parents[2]))
EVF_NODE = setting("EVF_NODE", "node")
EVF_CLI = setting("EVF_CLI", str(Path(REPO_ROOT) / "dist" / "cli.js"))
_schedule = setting("EVF_AIRFLOW_SCHEDULE", "*/5 * * * *")
SCHEDULE = None if _schedule.lower() in ("none", "manual") else _schedule


class EvfCatalogError(RuntimeError):
    """`evf catalog --json` could not be run or did not answer: the DAG cannot know its topics."""


def evf_catalog() -> dict:
    """The station catalog as evf sees it: ``{"topicPrefix", "topics", "stations": [{"name", "topic", …}]}``.

    One source of truth: the stations, their topics and the prefix's default are the project's,
    not copies kept here. EVF_TOPIC_PREFIX (env or Variable), when set, is passed on.
    """
    command = [EVF_NODE, EVF_CLI, "catalog", "--json"]
    prefix = setting("EVF_TOPIC_PREFIX")
    if prefix:
        command += ["--topic-prefix", prefix]
    hint = "set EVF_NODE to a Node.js 20+ binary and EVF_CLI to a built dist/cli.js (npm ci && npm run build)"
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, cwd=REPO_ROOT, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise EvfCatalogError(f"cannot run `{' '.join(command)}`: {err}; {hint}") from err
    if done.returncode != 0:
        # Exit 2 is a setting evf refused (its message names it); anything else, evf itself.
        why = done.stderr.strip()[:1500] + ("" if done.returncode == 2 else f"; {hint}")
        raise EvfCatalogError(f"`{' '.join(command)}` exited {done.returncode}: {why}")
    try:
        catalog = json.loads(done.stdout)
        if catalog["topics"] and all(s["name"] and s["topic"] for s in catalog["stations"]):
            return catalog
    except (ValueError, KeyError, TypeError):
        pass
    raise EvfCatalogError(f"`{' '.join(command)}` did not print the catalog as JSON: {done.stdout[:500]!r}; {hint}")


CATALOG = evf_catalog()
_prefix = CATALOG["topicPrefix"]
TOPICS = [t.strip() for t in setting("EVF_TOPICS", ",".join(CATALOG["topics"])).split(",") if t.strip()]
# The station a topic carries, for the silence check; a topic from EVF_TOPICS outside the
# catalog stands for a station of its own name, without the prefix.
STATION_OF_TOPIC = {s["topic"]: s["name"] for s in CATALOG["stations"]}


# --- run-time helpers --------------------------------------------------------------------------
def endpoints() -> tuple[str, str]:
    """(KAFKA_BROKERS, DATABASE_URL): settings first, then the running stack's stack.json, like the CLI."""
    brokers, db_url = setting("KAFKA_BROKERS"), setting("DATABASE_URL")
    if not (brokers and db_url):
        stack_file = Path(setting("EVF_DATA_DIR", str(Path(REPO_ROOT) / ".stack"))) / "stack.json"
        if stack_file.exists():
            running = json.loads(stack_file.read_text())
            brokers = brokers or running.get("kafkaBrokers", "")
            db_url = db_url or running.get("databaseUrl", "")
    if not (brokers and db_url):
        raise AirflowFailException("set KAFKA_BROKERS and DATABASE_URL (env or Variable), or start `evf stack up`")
    return brokers, db_url


def pg_connect(db_url: str):
    import psycopg2  # imported in the task, not at parse time

    # libpq takes postgresql:// URLs; strip a SQLAlchemy driver suffix if someone passes one.
    return psycopg2.connect(db_url.replace("postgresql+psycopg2://", "postgresql://", 1), connect_timeout=10)


# Defaults of the settings the bash tasks pass on to the CLI (resolved again when a task runs).
CLI_DEFAULTS = {"EVF_NODE": EVF_NODE, "EVF_CLI": EVF_CLI, "EVF_TOPIC_PREFIX": _prefix}
SECRET_SETTINGS = ("DATABASE_URL", "KAFKA_PASSWORD")
KAFKA_LOGIN = ("EVF_KAFKA_SASL_MECHANISM", "KAFKA_USERNAME", "KAFKA_PASSWORD", "KAFKA_CA_FILE")


def runtime_env(name: str) -> str:
    """Jinja macro for the bash tasks: the setting when the task runs ("" = the CLI's own default).

    DATABASE_URL and KAFKA_PASSWORD are masked in task logs and rendered fields.
    """
    value = setting(name, CLI_DEFAULTS.get(name, ""))
    if value and name in SECRET_SETTINGS:
        from airflow.sdk.log import mask_secret

        mask_secret(value)
    return value


# Env for every CLI call. BashOperator's env= REPLACES the environment unless append_env=True, so
# PATH, HOME etc. are inherited and these are layered on top. Every value is a Jinja expression on
# purpose: env is a templated field, and a plain string ending in ".sh"/".bash" (say EVF_CLI=x.sh)
# would be taken for a template FILE to load (jinja2 TemplateNotFound).
CLI_ENV = {
    k: "{{ evf_setting('%s') }}" % k
    for k in ("EVF_NODE", "EVF_CLI", "EVF_TOPIC_PREFIX", "KAFKA_BROKERS", "DATABASE_URL", *KAFKA_LOGIN)
}

# The subprocess hook merges stderr into stdout and BashOperator pushes the LAST line as XCom, so a
# late log line on stderr could replace the JSON. Hence: stdout to a file, logs stream to the task
# log live, and the JSON line is printed last. A failure dumps stdout to the log and keeps the exit
# code (2 config, 3 Kafka, 4 database, 5 fenced, 9 Kafka refused the login or an ACL).
LOAD_COMMAND = """
set -uo pipefail
out="$(mktemp)"; trap 'rm -f "$out"' EXIT
"$EVF_NODE" "$EVF_CLI" etl run --topic "$EVF_ETL_TOPIC" >"$out"
rc=$?
if [ "$rc" -ne 0 ]; then cat "$out" >&2; exit "$rc"; fi
tail -n 1 "$out"
"""


REFRESH_COMMAND = """
set -uo pipefail
if [ -n "${EVF_REFRESH_COMMAND:-}" ]; then eval "$EVF_REFRESH_COMMAND"; exit $?; fi
"$EVF_NODE" "$EVF_CLI" db maintain
"""


def parse_summary(line: str) -> dict:
    """output_processor: the XCom is the parsed summary, not a string."""
    try:
        return json.loads(line)
    except ValueError as err:
        raise AirflowFailException(f"`evf etl run` did not end with a JSON summary line: {line!r}") from err


with DAG(
    dag_id="ev_factory_etl",
    description="Kafka → PostgreSQL loads of the EV factory sensor topics, with data-quality gates",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    default_args={"retries": 2, "retry_delay": timedelta(seconds=15)},
    user_defined_macros={"evf_setting": runtime_env},
    tags=["evf", "etl"],
) as dag:

    @task
    def check_services() -> None:
        """Every Kafka broker accepts a TCP connection and PostgreSQL answers SELECT 1."""
        brokers, db_url = endpoints()
        for broker in (b.strip() for b in brokers.split(",") if b.strip()):
            host, _, port = broker.split("://")[-1].rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
                print(f"kafka {host}:{port} answers")
        with closing(pg_connect(db_url)) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
        print("postgresql answers")

    # One mapped task instance per topic (dynamic task mapping over the parse-time topic list).
    load = BashOperator.partial(
        task_id="load",
        bash_command=LOAD_COMMAND,
        append_env=True,
        cwd=REPO_ROOT,
        skip_on_exit_code=None,  # no exit code means "skipped": every failure is a failure
        output_processor=parse_summary,
        map_index_template="{{ task.env['EVF_ETL_TOPIC'] }}",
        execution_timeout=timedelta(minutes=20),
    ).expand(env=[{**CLI_ENV, "EVF_ETL_TOPIC": topic} for topic in TOPICS])

    @task
    def data_quality(summaries) -> None:
        """Fails the run on lost/extra messages, too many dead letters, or a silent station."""
        max_dl_rate = float(setting("EVF_DQ_MAX_DEAD_LETTER_RATE", "0.05"))
        max_silence = float(setting("EVF_DQ_MAX_SILENCE_MINUTES", "15"))
        problems = []
        # Mapped XComs come back in map-index order, i.e. the order of TOPICS (zip stops at the
        # last topic, so the lazy sequence is not read past its end).
        for topic, s in zip(TOPICS, summaries):
            loaded, rejected = int(s.get("loaded", 0)), int(s.get("rejected", 0))
            consumed = sum(int(p["to"]) - int(p["from"]) for p in s.get("partitions", []))
            print(f"{topic}: consumed={consumed} loaded={loaded} rejected={rejected}")
            if loaded + rejected != consumed:
                problems.append(f"{topic}: loaded {loaded} + rejected {rejected} != consumed {consumed}")
            if loaded + rejected > 0 and rejected / (loaded + rejected) > max_dl_rate:
                rate = rejected / (loaded + rejected)
                problems.append(f"{topic}: dead-letter rate {rate:.3f} > {max_dl_rate}")

        stations = sorted({STATION_OF_TOPIC.get(t, t.removeprefix(_prefix)) for t in TOPICS})
        _, db_url = endpoints()
        with closing(pg_connect(db_url)) as conn, conn.cursor() as cur:
            # Per-station max() so the (station, ...) index narrows each scan.
            cur.execute(
                """SELECT s, EXTRACT(EPOCH FROM now() - (SELECT max(reading_time) FROM sensor_data WHERE station = s)) / 60
                   FROM unnest(%s::text[]) AS s""",
                (stations,),
            )
            for station, minutes in cur.fetchall():
                print(f"{station}: last reading {'never' if minutes is None else f'{minutes:.1f} min ago'}")
                if minutes is None or minutes > max_silence:
                    problems.append(f"station {station}: no reading for more than {max_silence:g} min")
        if problems:
            raise AirflowFailException("data quality failed:\n  - " + "\n  - ".join(problems))

    # `evf db maintain` creates the coming days' partitions, applies the retention (EVF_RETENTION_DAYS)
    # and refreshes the planner statistics; EVF_REFRESH_COMMAND overrides it.
    refresh_summaries = BashOperator(
        task_id="refresh_summaries",
        bash_command=REFRESH_COMMAND,
        env={**CLI_ENV, "EVF_REFRESH_COMMAND": "{{ evf_setting('EVF_REFRESH_COMMAND') }}"},
        append_env=True,
        cwd=REPO_ROOT,
        skip_on_exit_code=None,
        do_xcom_push=False,
    )

    check_services() >> load
    data_quality(load.output) >> refresh_summaries
