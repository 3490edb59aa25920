/**
 * The single writer: of all presence services running (a rolling deploy runs two), only the
 * holder of the `presence` lease writes. The others wait and take over when the lease lapses,
 * each time with a new epoch, which fences whatever the previous writer still tries to write.
 *
 * The lease holder is `<service name>#<random>`: a service restarted under the same name takes
 * over its own previous incarnation's lease at once instead of waiting for it to lapse.
 */
import type { Lease } from '../cluster/lease.js'
import type { Logger } from '../core/logger.js'

export interface WriterOptions {
  lease: Lease
  /** This service's name (HERALD_NODE_ID of the presence process). */
  name: string
  ttlMs: number
  logger: Logger
  /** Starts writing with a new epoch. */
  activate: () => Promise<void>
  /** Stops writing (lease lost, or superseded). */
  deactivate: () => Promise<void>
  /** False when the store lost its data (Redis restarted empty or from an older snapshot, or flushed): rebuild. */
  intact?: () => Promise<boolean>
}

export class SingleWriter {
  private timer: NodeJS.Timeout | undefined
  private active = false
  private stopped = false
  private lastRenewed = 0
  private waitingLogged = false
  private busy: Promise<void> = Promise.resolve()
  /**
   * The activation under way: it runs beside the lease steps, never inside one, so a long
   * start (a repair pass over a large store) cannot let the lease lapse under its own writer.
   */
  private activation: Promise<void> | undefined
  private readonly log: Logger

  constructor(private readonly opts: WriterOptions) {
    this.log = opts.logger.child({ component: 'writer', name: opts.name })
  }

  get isActive(): boolean {
    return this.active
  }

  async start(): Promise<void> {
    await this.step()
    await this.activation
    this.timer = setInterval(
      () => {
        this.busy = this.busy.then(() => this.step())
      },
      Math.max(50, Math.floor(this.opts.ttlMs / 3)),
    )
    this.timer.unref()
  }

  /** The service found a newer writer in the data: stop writing now. */
  superseded(): void {
    this.busy = this.busy.then(() => this.stepDown('superseded by a newer presence service'))
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.busy
    if (this.active) {
      await this.stepDown('shutting down')
      await this.opts.lease.release().catch(() => {})
    }
  }

  private async step(): Promise<void> {
    if (this.stopped) return
    const { lease } = this.opts
    try {
      if (this.active) {
        const result = await lease.renew()
        if (result === 'lost') return this.stepDown('another presence service holds the lease')
        if (result === 'retaken') this.log.warn('the writer lease had lapsed (Redis away?); taken again')
        this.lastRenewed = Date.now()
        if (this.activation) return // still starting: only the lease is kept
        if (this.opts.intact && !(await this.opts.intact())) {
          this.log.error(
            'the store lost its data (Redis restarted without it or from an older snapshot, or was flushed): rebuilding presence',
          )
          await this.stepDown('data loss')
          this.activate()
        }
        return
      }
      let mine = await lease.acquire()
      if (!mine) {
        const holder = await lease.current()
        if (holder !== undefined && holder.split('#')[0] === this.opts.name) {
          // our own previous incarnation (crashed): take its lease at once
          mine = await lease.takeFrom(holder)
        }
      }
      if (!mine) {
        if (!this.waitingLogged)
          this.log.info('standby: another presence service writes; waiting for its lease to lapse')
        this.waitingLogged = true
        return
      }
      this.lastRenewed = Date.now()
      this.waitingLogged = false
      this.log.info('this presence service is the writer')
      this.activate()
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'writer lease check failed; will retry')
      // a writer that cannot prove it still holds the lease stops before another may take it
      if (this.active && Date.now() - this.lastRenewed > this.opts.ttlMs * 0.8) {
        await this.stepDown('could not renew the writer lease in time')
      }
    }
  }

  /** Starts writing, beside the lease steps; a failed start gives the writer role back. */
  private activate(): void {
    this.active = true
    const activation = this.opts.activate().then(
      () => {},
      (err: Error) => {
        this.log.error({ err: err.message }, 'the writer could not start; will try again')
        this.active = false
      },
    )
    this.activation = activation.finally(() => {
      this.activation = undefined
    })
  }

  private async stepDown(why: string): Promise<void> {
    await this.activation
    if (!this.active) return
    this.active = false
    this.log.warn({ why }, 'this presence service stops writing')
    await this.opts.deactivate()
  }
}
