import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { Type } from 'typebox'
import { kafkaNodes, type Pool, type Totals, totals } from '../../db/index.ts'
import type { ResponseCache } from '../cache.ts'
import { type EvaluatorOf, pipelineStatus, type Status } from '../pipeline-status.ts'
import { answers } from '../problems.ts'
import { ALARM_STATE_NAMES, SEVERITY_NAMES } from '../schemas-alarms.ts'
import type { IngestSource } from '../schemas-sources.ts'
import { sourcesStatus } from '../sources.ts'
import type { Api } from '../types.ts'

/** `/metrics` for Prometheus: the API's own (HTTP, cache, process) and the pipeline's, read from PostgreSQL. */
export function metricsRoutes(
  app: Api,
  pool: Pool,
  stallSec: number,
  evaluator: EvaluatorOf | undefined,
  cache?: ResponseCache,
  replica?: Pool,
): void {
  // One registry per app (tests build several apps in one process).
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'evf_api_' })
  httpMetrics(app, registry)
  if (cache?.enabled) cacheMetrics(registry, cache)
  const update = pipelineMetrics(registry)
  const updateAlarms = alarmMetrics(registry, evaluator)
  const updateSources = sourceMetrics(registry)
  const kafkaUp = new Gauge({
    name: 'evf_kafka_node_up',
    help: '1 while a node of the embedded Kafka cluster runs, 0 while it is down (--kafka-nodes 3)',
    labelNames: ['node'],
    registers: [registry],
  })
  const schema = {
    summary: 'Prometheus metrics',
    tags: ['ops'],
    response: answers({ 200: { content: { 'text/plain': { schema: Type.String() } } } }),
  }
  app.get('/metrics', { config: { scope: 'metrics' }, schema }, async (_req, reply) => {
    const [stored, s, nodes, sources] = await Promise.all([
      totals(pool),
      pipelineStatus(pool, new Date(Date.now() - 60_000), new Date(), stallSec, replica),
      kafkaNodes(pool),
      sourcesStatus(pool),
    ])
    update(stored, s)
    updateAlarms(s)
    updateSources(sources)
    kafkaUp.reset()
    for (const n of nodes.nodes) kafkaUp.set({ node: String(n.node_id) }, n.up ? 1 : 0)
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}

/** Per device source of `evf ingest` (docs/devices.md): its counters as ingest last wrote them. */
function sourceMetrics(registry: Registry): (sources: IngestSource[]) => void {
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ['source', 'kind'], registers: [registry] })
  const up = gauge('evf_source_up', '1 while a device source is connected and its ingest alive, else 0')
  const inbound = gauge('evf_source_messages_in', 'Messages (OPC UA: values) a device source received')
  const acked = gauge('evf_source_acknowledged', 'MQTT messages acknowledged to the broker after Kafka did')
  const produced = gauge('evf_source_produced', 'Readings a device source produced to Kafka')
  const missed = gauge(
    'evf_source_missed',
    'Values a device source could not deliver (seq gaps, OPC UA samples lost)',
  )
  const last = gauge(
    'evf_source_last_message_timestamp_seconds',
    'When a device source last received a message',
  )
  const all = [up, inbound, acked, produced, missed, last]
  return (sources) => {
    for (const g of all) g.reset()
    for (const s of sources) {
      const labels = { source: s.source, kind: s.kind }
      up.set(labels, s.up ? 1 : 0)
      inbound.set(labels, s.messages_in)
      acked.set(labels, s.acknowledged)
      produced.set(labels, s.produced)
      missed.set(labels, s.missed)
      if (s.last_message_at) last.set(labels, Date.parse(s.last_message_at) / 1000)
    }
  }
}

function httpMetrics(app: FastifyInstance, registry: Registry): void {
  const latency = new Histogram({
    name: 'evf_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const errors = new Counter({
    name: 'evf_http_errors_total',
    help: 'HTTP responses with status >= 500',
    labelNames: ['route'],
    registers: [registry],
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    latency.observe({ method: req.method, route, status: reply.statusCode }, reply.elapsedTime / 1000)
    if (reply.statusCode >= 500) errors.inc({ route })
  })
}

function cacheMetrics(registry: Registry, cache: ResponseCache): void {
  const { stats } = cache
  new Counter({
    name: 'evf_api_cache_requests_total',
    help: 'Cacheable requests answered from the response cache (hit) or computed (miss)',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset()
      this.inc({ result: 'hit' }, stats.hits)
      this.inc({ result: 'miss' }, stats.misses)
    },
  })
  new Counter({
    name: 'evf_api_cache_invalidations_total',
    help: 'Times an ETL commit (NOTIFY) emptied the response cache',
    registers: [registry],
    collect() {
      this.reset()
      this.inc(stats.invalidations)
    },
  })
}

/** The pipeline's gauges, and the function that sets them from what PostgreSQL says. */
function pipelineMetrics(registry: Registry) {
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] })
  const rowsLoaded = gauge('evf_rows_loaded', 'Readings stored, per station (from the hourly rollups)', [
    'station',
  ])
  const deadLetters = gauge('evf_dead_letters', 'Dead letters not yet re-driven, per reason', ['reason_code'])
  const lag = gauge('evf_consumer_lag', 'Messages in Kafka not yet loaded, per partition', [
    'topic',
    'partition',
  ])
  const stalled = gauge(
    'evf_etl_stalled',
    '1 when messages wait in Kafka and the ETL has committed nothing for etlStallSec, else 0',
  )
  const blocked = gauge(
    'evf_etl_partition_blocked',
    '1 for a partition the ETL holds back at a record batch it cannot decode (evf etl skip moves past it)',
    ['topic', 'partition'],
  )
  const replicaLag = gauge(
    'evf_replica_lag_seconds',
    'How far the hot standby the API reads from replays behind the primary (only with DATABASE_READ_URL)',
  )
  const lastCommit = gauge('evf_etl_last_commit_timestamp_seconds', 'When the ETL last committed a batch')
  const lastRun = gauge(
    'evf_etl_last_run_timestamp_seconds',
    'When the last ETL run finished (or was last seen running)',
  )
  const lastRunOk = gauge(
    'evf_etl_last_run_success',
    '1 if the last ETL run succeeded or is running, 0 if it failed',
  )
  return (stored: Totals, s: Status): void => {
    rowsLoaded.reset()
    for (const r of stored.loaded) rowsLoaded.set({ station: r.station }, Number(r.n))
    deadLetters.reset()
    for (const r of stored.dead) deadLetters.set({ reason_code: r.reason_code }, Number(r.n))
    lag.reset()
    for (const p of s.etl.partitions)
      if (p.lag !== null) lag.set({ topic: p.topic, partition: p.partition }, p.lag)
    stalled.set(s.etl.stalled ? 1 : 0)
    blocked.reset()
    for (const p of s.etl.partitions)
      if (p.blocked_reason !== null) blocked.set({ topic: p.topic, partition: p.partition }, 1)
    if (s.replica?.lag_seconds != null) replicaLag.set(s.replica.lag_seconds)
    if (s.etl.last_commit_at) lastCommit.set(s.etl.last_commit_at.getTime() / 1000)
    const run = s.last_run
    if (run) {
      lastRun.set(Date.parse(run.finished_at ?? run.started_at) / 1000 || 0)
      lastRunOk.set(run.status === 'failed' ? 0 : 1)
    }
  }
}

/** The alarms' gauges: alarms by state and severity, notifications by receiver and status, the evaluator's lead. */
function alarmMetrics(registry: Registry, evaluator: EvaluatorOf | undefined) {
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] })
  const alarms = gauge('evf_alarms', 'Alarms per ISA-18.2 state and severity (NORMAL included)', [
    'state',
    'severity',
  ])
  const messages = gauge(
    'evf_alarm_notifications',
    'Notification messages per receiver and status (pending, sent, expired: given up)',
    ['receiver', 'status'],
  )
  const oldest = gauge(
    'evf_alarm_notification_oldest_pending_seconds',
    'Age of the oldest message a receiver has not taken yet (0: none pending)',
    ['receiver'],
  )
  const heartbeat = gauge(
    'evf_alarm_evaluator_heartbeat_age_seconds',
    'Seconds since the leading alarm evaluator last ticked (any process; absent when none ever ran): over 30, alarms are not being evaluated',
  )
  const behind = gauge(
    'evf_alarm_evaluator_behind_readings',
    'Readings loaded by the ETL that no alarm evaluator has evaluated yet',
  )
  // Only in a process that runs an evaluator (EVF_ALARM_EVALUATOR=api).
  const leader =
    evaluator &&
    gauge(
      'evf_alarm_evaluator_leader',
      '1 while the alarm evaluator of this API process leads (one process of a deployment does), else 0',
    )
  return (s: Status): void => {
    alarms.reset()
    for (const state of ALARM_STATE_NAMES)
      for (const severity of SEVERITY_NAMES) alarms.set({ state, severity }, 0)
    for (const c of s.alarms.counts) alarms.set({ state: c.state, severity: c.severity }, c.n)
    messages.reset()
    oldest.reset()
    const now = Date.now()
    for (const d of s.alarms.deliveries) {
      messages.set({ receiver: d.receiver, status: d.status }, d.messages)
      if (d.status !== 'pending') continue
      const age = d.oldest_pending === null ? 0 : (now - new Date(d.oldest_pending).getTime()) / 1000
      oldest.set({ receiver: d.receiver }, Math.max(0, age))
    }
    leader?.set(evaluator?.()?.leading ? 1 : 0)
    heartbeat.reset()
    if (s.alarms.health.heartbeat_age_sec !== null) heartbeat.set(s.alarms.health.heartbeat_age_sec)
    behind.set(s.alarms.health.behind)
  }
}
