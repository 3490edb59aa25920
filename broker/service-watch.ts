/**
 * An access node watches the presence service: the retained `$SYS/herald/presence-service`
 * `{status, epoch}` document, read from persistence at start and after the bus reconnects
 * (retained messages never reach bus listeners) and followed live. When a new epoch appears —
 * a restarted or newly elected presence service — the node re-publishes its whole online set
 * without waiting to be asked. While no service is up, nothing is lost: events wait in the
 * node's log.
 */
import type { Aedes, AedesPublishPacket } from 'aedes'
import type { Logger } from '../services/core/logger.js'
import { topics } from '../services/core/topics.js'
import type { MQEmitter } from './node.js'

export interface ServiceStatus {
  status: 'up' | 'down'
  epoch: number
}

interface RetainedSource {
  createRetainedStream(pattern: string): AsyncIterable<{ payload: Buffer }>
}

export class ServiceWatch {
  private epoch = 0
  private status: ServiceStatus['status'] | undefined
  private readonly log: Logger

  constructor(
    private readonly broker: Aedes,
    private readonly mq: MQEmitter,
    private readonly onNewEpoch: (epoch: number) => void,
    logger: Logger,
  ) {
    this.log = logger.child({ component: 'service-watch' })
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.broker.subscribe(
        topics.presenceService,
        (packet: AedesPublishPacket, cb: () => void) => {
          this.seen(packet.payload)
          cb()
        },
        () => resolve(),
      ),
    )
    await this.readRetained()
    // mqemitter-redis: after its subscriber connection comes back, what was missed is in persistence
    const state = (this.mq as unknown as { state?: { on(ev: string, fn: () => void): void } }).state
    state?.on('subConnect', () => void this.readRetained())
  }

  private async readRetained(): Promise<void> {
    try {
      const persistence = (this.broker as unknown as { persistence: RetainedSource }).persistence
      for await (const packet of persistence.createRetainedStream(topics.presenceService))
        this.seen(packet.payload)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not read the presence service status')
    }
  }

  private seen(payload: Buffer | string): void {
    let doc: ServiceStatus
    try {
      doc = JSON.parse(payload.toString()) as ServiceStatus
    } catch {
      return
    }
    if (doc.status !== this.status) {
      this.log.info({ status: doc.status, epoch: doc.epoch }, `presence service ${doc.status}`)
      this.status = doc.status
    }
    if (doc.status === 'up' && doc.epoch > this.epoch) {
      const first = this.epoch === 0
      this.epoch = doc.epoch
      if (!first) this.onNewEpoch(doc.epoch)
    }
  }
}
