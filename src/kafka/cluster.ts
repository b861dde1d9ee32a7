import type { ChildProcess } from 'node:child_process'
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { stopChild } from '../shared/process.ts'
import { backoff, sleep } from '../shared/time.ts'
import {
  type BrokerOptions,
  type EmbeddedBroker,
  formatOnce,
  javaArgsFor,
  LOG4J,
  newClusterId,
  portAnswers,
  provisionUsers,
  requireJars,
  securityProperties,
  spawnBroker,
  stopOrphan,
  untilAnswers,
} from './broker.ts'
import { type KafkaSecrets, kafkaSecrets } from './credentials.ts'

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
 * leader election off. A node that dies is logged and started again with backoff
 * (`restartNodes`): losing one of three stops nothing.
 */
export class KafkaCluster {
  private readonly children = new Map<number, ChildProcess>()
  private readonly states = new Map<number, NodeState>()
  private stopping = false
  readonly secrets: KafkaSecrets
  /** told of every node that starts or dies (the stack records them for /ready and /metrics) */
  onChange: (nodes: NodeState[]) => void = () => undefined

  constructor(private readonly opts: BrokerOptions & { nodes: number; restartNodes: boolean }) {
    this.secrets = kafkaSecrets(opts.dataDir)
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
    const home = this.home(i)
    const { port } = nodePorts(this.opts, i)
    const pidFile = join(home, 'broker.pid')
    await stopOrphan(pidFile, this.opts.log)
    const child = spawnBroker(this.java(i), join(home, 'server.properties'), join(home, 'logs'))
    this.children.set(i, child)
    await writeFile(pidFile, String(child.pid))
    const previous = this.states.get(i)
    child.once('exit', (code, signal) => void this.died(i, child, code ?? signal))
    await untilAnswers(child, port, join(home, 'logs', 'server.log'), this.opts.timeoutMs ?? 120_000)
    this.states.set(i, {
      id: i,
      address: `127.0.0.1:${port}`,
      up: true,
      since: new Date(),
      restarts: previous ? previous.restarts + 1 : 0,
    })
    this.onChange(this.nodes())
  }

  /** Kills node `i` as a crash would (SIGKILL); tests use it to lose a broker. */
  kill(i: number): void {
    this.children.get(i)?.kill('SIGKILL')
  }

  private async died(i: number, child: ChildProcess, how: number | string | null): Promise<void> {
    if (this.stopping || this.children.get(i) !== child) return
    const state = this.states.get(i)
    if (state) Object.assign(state, { up: false, since: new Date() })
    this.onChange(this.nodes())
    this.opts.log.error(
      { node: i, exit: how, restart: this.opts.restartNodes },
      `Kafka node ${i} died; the cluster goes on with the others`,
    )
    if (!this.opts.restartNodes) return
    for (let attempt = 0; !this.stopping; attempt++) {
      await sleep(backoff(attempt))
      if (this.stopping) return
      try {
        await this.startNode(i)
        this.opts.log.warn({ node: i, attempt: attempt + 1 }, `Kafka node ${i} started again`)
        return
      } catch (error) {
        this.opts.log.error({ node: i, err: String(error) }, `Kafka node ${i} did not start again`)
      }
    }
  }

  async stop(): Promise<void> {
    this.stopping = true
    await Promise.all(
      [...this.children].map(async ([i, child]) => {
        await stopChild(child, 30_000)
        await rm(join(this.home(i), 'broker.pid'), { force: true })
      }),
    )
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
