/**
 * Alarms (docs/alarms.md): rules on the live stream, the ISA-18.2 lifecycle, and notifications
 * that arrive once. `startAlarms` runs the evaluator and the notifier in this process (the API's,
 * or `evf alarms run`); only one process in a deployment leads at a time.
 */
import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import type { Pool } from '../db/index.ts'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { createMailer } from './email.ts'
import { AlarmEvaluator } from './evaluator.ts'
import { Notifier, type Sender } from './notifier.ts'
import { type NotificationPayload, renderEmail } from './payload.ts'
import { type Route, type RoutingPolicy, SEVERITIES, type Severity } from './routing.ts'
import { sendWebhook } from './webhook.ts'

export { ACTIONS, type Action, AlarmNotFound, act } from './actions.ts'
export { AlarmEvaluator } from './evaluator.ts'
export { ALARM_STATES, type AlarmState, STATE_MEANING } from './lifecycle.ts'
export { SEVERITIES } from './routing.ts'
export { checkRule, PIPELINE_CHECKS, RULE_KINDS, RuleError } from './rules.ts'
export { WE_RULES } from './western-electric.ts'

const FLOOD_WINDOW_MS = 600_000

type AlarmConfig = Pick<
  Config,
  | 'smtpUrl'
  | 'alarmEmailTo'
  | 'alarmEmailFrom'
  | 'alarmWebhookUrl'
  | 'alarmWebhookSecret'
  | 'alarmRoutes'
  | 'alarmGroupWaitMs'
  | 'alarmRepeatMs'
  | 'alarmFloodLimit'
  | 'etlStallSec'
>

/** `email:critical,high@paint webhook` → routes; a severity that does not exist stops start-up. */
export function parseRoutes(text: string): Route[] {
  return text
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((entry) => {
      const m = /^(email|webhook)(?::([a-z,]+))?(?:@([A-Za-z0-9_,.-]+))?$/.exec(entry)
      if (!m) throw invalid('EVF_ALARM_ROUTES', `"${entry}" is not receiver[:severity,…][@station,…]`)
      const severities = m[2]?.split(',').filter(Boolean) ?? []
      const bad = severities.filter((s) => !(SEVERITIES as readonly string[]).includes(s))
      if (bad.length > 0)
        throw invalid(
          'EVF_ALARM_ROUTES',
          `unknown severity ${bad.join(', ')}; allowed: ${SEVERITIES.join(', ')}`,
        )
      return {
        receivers: [m[1]!],
        severities: severities as Severity[],
        stations: m[3]?.split(',').filter(Boolean) ?? [],
      }
    })
}

const invalid = (key: string, message: string) =>
  new PipelineError('CONFIG_INVALID', `Invalid configuration: ${key}: ${message}`)

/** The receivers the configuration names, each a sender of one message. */
export function senders(config: AlarmConfig): { senders: Map<string, Sender>; close: () => void } {
  const out = new Map<string, Sender>()
  const closers: (() => void)[] = []
  if (config.smtpUrl && config.alarmEmailTo) {
    const mailer = createMailer(config.smtpUrl, { from: config.alarmEmailFrom, timeoutMs: 15_000 })
    const to = config.alarmEmailTo.split(',')
    out.set('email', async (m) => {
      await mailer.send(to, renderEmail(m.payload as NotificationPayload))
    })
    closers.push(() => mailer.close())
  }
  if (config.alarmWebhookUrl) {
    if (config.alarmWebhookSecret.length < 16)
      throw invalid(
        'EVF_ALARM_WEBHOOK_SECRET',
        'EVF_ALARM_WEBHOOK_URL is set: give a secret of at least 16 characters to sign with',
      )
    const { alarmWebhookUrl: url, alarmWebhookSecret: secret } = config
    out.set('webhook', async (m) => {
      await sendWebhook(url, secret, m.payload as NotificationPayload, { key: m.key, timeoutMs: 10_000 })
    })
  }
  return {
    senders: out,
    close: () => {
      for (const c of closers) c()
    },
  }
}

export interface Alarms {
  evaluator: AlarmEvaluator
  notifier: Notifier
  close(): Promise<void>
}

/** Starts evaluating and delivering (following until this process can lead). */
export function startAlarms(
  config: AlarmConfig,
  deps: { pool: Pool; log: Logger; catalog: () => Catalog; dashboardUrl?: string | undefined },
): Alarms {
  const policy: RoutingPolicy = {
    routes: parseRoutes(config.alarmRoutes),
    groupWaitMs: config.alarmGroupWaitMs,
    floodLimit: config.alarmFloodLimit,
    floodWindowMs: FLOOD_WINDOW_MS,
  }
  const s = senders(config)
  const log = deps.log.child({ component: 'alarms' })
  const notifier = new Notifier({
    pool: deps.pool,
    log,
    policy,
    senders: s.senders,
    repeatMs: config.alarmRepeatMs,
    dashboardUrl: deps.dashboardUrl,
  })
  const evaluator = new AlarmEvaluator({
    pool: deps.pool,
    log,
    catalog: deps.catalog,
    stallSec: config.etlStallSec,
    notifier,
  })
  evaluator.start()
  log.info({ receivers: [...s.senders.keys()], routes: config.alarmRoutes }, 'alarms started')
  return {
    evaluator,
    notifier,
    async close() {
      await evaluator.close()
      await notifier.close()
      s.close()
    },
  }
}
