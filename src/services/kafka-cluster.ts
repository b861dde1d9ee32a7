import type { ChildProcess } from 'node:child_process'
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type KafkaSecrets, kafkaSecrets } from '../kafka/index.ts'
import { type ChildSpec, restartWithBackoff, Supervisor, stopOnExit } from '../shared/supervisor.ts'
import {
  answering,
  BROKER_STOP,
  type BrokerOptions,
  brokerOrphan,
  type EmbeddedBroker,
  formatOnce,
  javaArgsFor,
  LOG4J,
  newClusterId,
  provisionUsers,
  requireJars,
  securityProperties,
} from './kafka-broker.ts'
import { portAnswers, stopOrphan, untilReady } from './server.ts'

/** Where node `i` (1-based) of a cluster listens: the single node's ports, then every second one. */
export const nodePorts = (opts: { port: number; controllerPort: number }, i: number) => ({
  port: opts.port + 2 * (i - 1),
  controllerPort: opts.controllerPort + 2 * (i - 1),
})

export interface NodeState {
  id: number
  address: string
  up: boolean
  /** when it was last seen to start or to die */
  since: Date
  restarts: number
}

/**
 * A KRaft cluster of `nodes` combined broker+controller nodes on this host, from the same jars,
 * each in `<dataDir>/kafka/node-<i>` on its own ports, forming a quorum of all of them. Topics
 * default to replication factor `nodes` (at most 3) with `min.insync.replicas=2` and unclean
 * leader election off. The nodes run under the shared `Supervisor`: with `restartNodes`, its
 * `backoff` policy starts a node that died again (losing one of three stops nothing); without,
 * a dead node stays down until `startNode`.
 */
export class KafkaCluster {
  private readonly children = new Map<number, ChildProcess>()
  private readonly states = new Map<number, NodeState>()
  private readonly supervisor: Supervisor
  /** nodes `startNode` is starting (its spawn is not a restart), and their wait until they answer */
  private readonly starting = new Map<number, Promise<void> | undefined>()
  readonly secrets: KafkaSecrets
  /** told of every node that starts or dies (the stack records them for /ready and /metrics) */
  onChange: (nodes: NodeState[]) => void = () => undefined

  constructor(private readonly opts: BrokerOptions & { nodes: number; restartNodes: boolean }) {
    this.secrets = kafkaSecrets(opts.dataDir)
    this.supervisor = new Supervisor({ log: opts.log })
  }

  get brokers(): string {
    return this.ids()
      .map((i) => `127.0.0.1:${nodePorts(this.opts, i).port}`)
      .join(',')
  }

  nodes(): NodeState[] {
    return [...this.states.values()]
  }

  private ids(): number[] {
    return Array.from({ length: this.opts.nodes }, (_, k) => k + 1)
  }

  async start(): Promise<EmbeddedBroker & { cluster: KafkaCluster }> {
    await requireJars()
    const clusterId = (await this.existingClusterId()) ?? newClusterId()
    for (const i of this.ids()) await this.prepare(i, clusterId)
    // All at once: a node waits for a quorum of the others before it answers.
    const starting = this.ids().map((i) => this.startNode(i))
    try {
      await Promise.all(starting)
      await provisionUsers(
        this.ids().map((i) => nodePorts(this.opts, i).controllerPort),
        this.secrets,
      )
    } catch (error) {
      // One node that cannot start (its port taken, say) fails the start: the others stop too,
      // rather than outlive it unowned.
      await this.stop()
      await Promise.allSettled(starting)
      await this.stop()
      throw error
    }
    return {
      brokers: this.brokers,
      process: this.children.get(1)!,
      secrets: this.secrets,
      cluster: this,
      stop: () => this.stop(),
    }
  }

  /** The id a node formatted earlier holds: the others join that cluster. */
  private async existingClusterId(): Promise<string | undefined> {
    for (const i of this.ids()) {
      const meta = await readFile(join(this.home(i), 'data', 'meta.properties'), 'utf8').catch(() => '')
      const id = /^cluster\.id=(.+)$/m.exec(meta)?.[1]
      if (id) return id.trim()
    }
    return undefined
  }

  private home = (i: number) => join(this.opts.dataDir, 'kafka', `node-${i}`)

  /** Writes node `i`'s properties (0600: they hold passwords) and formats its storage once. */
  private async prepare(i: number, clusterId: string): Promise<void> {
    const home = this.home(i)
    await mkdir(join(home, 'logs'), { recursive: true })
    const props = join(home, 'server.properties')
    await writeFile(props, this.properties(i), { mode: 0o600 })
    await chmod(props, 0o600)
    await writeFile(join(home, 'log4j2.properties'), LOG4J)
    await formatOnce(this.java(i), props, join(home, 'data'), this.secrets, this.opts.log, clusterId)
  }

  private java(i: number): string[] {
    const home = this.home(i)
    return javaArgsFor(this.opts.heapMb, join(home, 'log4j2.properties'), join(home, 'logs'))
  }

  /** Starts node `i` and waits until it answers; with `restartNodes`, a death starts it again. */
  async startNode(i: number): Promise<void> {
    await stopOrphan(brokerOrphan(join(this.home(i), 'broker.pid')), this.opts.log)
    this.starting.set(i, undefined)
    await this.supervisor.start(this.nodeSpec(i))
    const started = this.starting.get(i)
    this.starting.delete(i)
    await started
  }

  /** Node `i` as a child of the supervisor, its output in `logs/stdout.log`. */
  private nodeSpec(i: number): ChildSpec {
    const home = this.home(i)
    return {
      name: `kafka-node-${i}`,
      command: 'java',
      args: [...this.java(i), 'kafka.Kafka', join(home, 'server.properties')],
      env: {},
      restart: this.opts.restartNodes ? restartWithBackoff() : stopOnExit,
      output: 'quiet',
      logFile: join(home, 'logs', 'stdout.log'),
      group: true,
      label: `Kafka node ${i}`,
      logFields: { node: i },
      onSpawn: (child) => this.spawned(i, child),
      onExit: (code, signal) => this.died(i, code ?? signal),
    }
  }

  /** Each spawn of node `i`: its pid file, then its state once it answers. */
  private spawned(i: number, child: ChildProcess): void {
    this.children.set(i, child)
    const restart = !this.starting.has(i)
    const up = this.whenUp(i, child, restart)
    if (!restart) return void this.starting.set(i, up)
    // A restart that fails was killed: the supervisor's policy tries again.
    up.catch((error: unknown) =>
      this.opts.log.error({ node: i, err: String(error) }, `Kafka node ${i} did not start again`),
    )
  }

  private async whenUp(i: number, child: ChildProcess, restart: boolean): Promise<void> {
    const home = this.home(i)
    const { port } = nodePorts(this.opts, i)
    await writeFile(join(home, 'broker.pid'), String(child.pid))
    await untilReady(child, answering(port, join(home, 'logs', 'server.log'), this.opts.timeoutMs ?? 120_000))
    const previous = this.states.get(i)
    this.states.set(i, {
      id: i,
      address: `127.0.0.1:${port}`,
      up: true,
      since: new Date(),
      restarts: previous ? previous.restarts + 1 : 0,
    })
    this.onChange(this.nodes())
    if (restart) this.opts.log.warn({ node: i }, `Kafka node ${i} started again`)
  }

  /** Kills node `i` as a crash would (SIGKILL); tests use it to lose a broker. */
  kill(i: number): void {
    this.children.get(i)?.kill('SIGKILL')
  }

  /** Told by the supervisor of a node that exited by itself (never of one `stop` stopped). */
  private died(i: number, how: number | string | null): void {
    const state = this.states.get(i)
    if (state) Object.assign(state, { up: false, since: new Date() })
    this.onChange(this.nodes())
    this.opts.log.error(
      { node: i, exit: how, restart: this.opts.restartNodes },
      `Kafka node ${i} died; the cluster goes on with the others`,
    )
  }

  async stop(): Promise<void> {
    await this.supervisor.stopAll({ graceMs: BROKER_STOP.graceMs, parallel: true })
    await Promise.all(this.ids().map((i) => rm(join(this.home(i), 'broker.pid'), { force: true })))
  }

  /** Whether node `i`'s client port answers now. */
  answers(i: number): Promise<boolean> {
    return portAnswers(nodePorts(this.opts, i).port)
  }

  private properties(i: number): string {
    const n = this.opts.nodes
    const { port, controllerPort } = nodePorts(this.opts, i)
    const voters = this.ids()
      .map((v) => `${v}@127.0.0.1:${nodePorts(this.opts, v).controllerPort}`)
      .join(',')
    const rf = Math.min(n, 3)
    const isr = Math.min(rf, 2)
    return `# Written by evf at every start; edit the settings, not this file. Mode 0600: it holds passwords.
process.roles=broker,controller
node.id=${i}
controller.quorum.voters=${voters}
${securityProperties(port, controllerPort, this.secrets, this.opts.tls)}
log.dirs=${join(this.home(i), 'data')}
num.partitions=${this.opts.partitions}
default.replication.factor=${rf}
min.insync.replicas=${isr}
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=${rf}
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=${rf}
transaction.state.log.min.isr=${isr}
share.coordinator.state.topic.replication.factor=${rf}
share.coordinator.state.topic.min.isr=${isr}
group.initial.rebalance.delay.ms=0
# A dead node is fenced after 3 s (default 9 s): its partitions' leadership moves sooner.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=750
num.network.threads=2
num.io.threads=4
log.retention.hours=168
`
  }
}
