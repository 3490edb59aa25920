/** Messages between the bench (parent) and its load workers (child processes, IPC). */

export interface ClientSpec {
  clientId: string
  userId: string
  /** JWT for Herald; ignored by bare brokers. */
  password: string
}

export type WorkerCommand =
  | {
      op: 'open'
      url: string
      clients: ClientSpec[]
      /** Connects in flight at once. */
      concurrency: number
      /** Connects per second over the whole worker (0 = as fast as possible). */
      rate: number
      keepalive: number
      /** Loopback source addresses to spread connections over (127.0.0.x). */
      localAddresses: string[]
      /** Subscribe each client to its own inbox after connecting. */
      subscribeInbox: boolean
      clean: boolean
    }
  | { op: 'publish'; rate: number; durationMs: number; qos: 0 | 1; targets: string[] }
  | { op: 'collect' }
  | { op: 'churn'; url: string; durationMs: number; seed: number; localAddresses: string[] }
  | { op: 'close' }

export type WorkerReply =
  | {
      op: 'opened'
      connack: string
      connackAt: Record<string, number>
      failed: number
      /** Why connects failed: error message (or 'closed') -> count. */
      failures: Record<string, number>
      elapsedMs: number
    }
  | { op: 'published'; sent: number; acked: number; ack: string; elapsedMs: number }
  | { op: 'collected'; received: number; e2e: string }
  | { op: 'churned'; connects: number; disconnects: number; drops: number; failed: number; elapsedMs: number }
  | { op: 'closed' }
  | { op: 'error'; message: string }
