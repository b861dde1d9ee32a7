/** The part of autocannon 9's programmatic API that bench:api uses (the package ships no types). */
declare module 'autocannon' {
  export interface Options {
    url: string
    connections?: number
    duration?: number
    pipelining?: number
    timeout?: number
    headers?: Record<string, string>
    /** called with each connection's client, e.g. to listen to its events */
    setupClient?: (client: Client) => void
  }
  /** What a client's `headers` event carries: the status and the raw headers, name, value, name, … */
  export interface ResponseHead {
    statusCode: number
    headers: string[]
  }
  /** One connection of the load generator (an EventEmitter). */
  export interface Client {
    on(event: 'headers', listener: (head: ResponseHead) => void): this
  }
  export interface Histogram {
    average: number
    mean: number
    stddev: number
    min: number
    max: number
    p50: number
    p90: number
    p99: number
    total: number
  }
  export interface Result {
    url: string
    duration: number
    errors: number
    timeouts: number
    non2xx: number
    resets: number
    '2xx': number
    statusCodeStats: Record<string, { count: number }>
    latency: Histogram
    requests: Histogram & { sent: number }
    throughput: Histogram
  }
  export interface Instance extends PromiseLike<Result> {
    stop(): void
  }
  function autocannon(opts: Options): Instance
  export default autocannon
}
