/**
 * A fault-injecting event bus between access nodes and the presence service, for tests:
 * seeded and reproducible, it drops, duplicates, delays and reorders presence events. The test
 * pumps it by hand (`deliver()`), so every schedule runs deterministically and fast.
 *
 * Faults apply to connection, disconnection and status events — what a lossy transport would
 * mangle. Heartbeats and snapshots pass in order, but events held back still overtake them or
 * fall behind them.
 */
import {
  type EventSink,
  type EventSource,
  isSequenced,
  type LogEntry,
  type NodeEvent,
} from '../../services/events/types.js'

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface FaultRates {
  drop: number
  duplicate: number
  /** Held back for one or more deliveries (reordering). */
  delay: number
}

export class FaultyLog {
  private queue: NodeEvent[] = []
  private held: Array<{ ev: NodeEvent; rounds: number }> = []
  private handler: ((batch: LogEntry[]) => Promise<void>) | undefined
  private next = 1
  faults = true
  readonly counts = { dropped: 0, duplicated: 0, delayed: 0 }

  constructor(
    private readonly random: () => number,
    private readonly rates: FaultRates,
  ) {}

  sink(): EventSink {
    return {
      append: (ev) => this.queue.push(ev),
      flush: async () => {},
      close: async () => {},
    }
  }

  source(): EventSource {
    return {
      start: (handler) => {
        this.handler = handler
      },
      seekToEnd: async () => {},
      nodes: async () => [],
      caughtUp: async () => this.queue.length === 0 && this.held.length === 0,
      // delivery is driven by hand here: the reader is never behind on its own
      behind: async () => false,
      stop: async () => {},
    }
  }

  /** Delivers what is due now, through the faults, as one batch. */
  async deliver(): Promise<void> {
    const out: NodeEvent[] = []
    const stillHeld: typeof this.held = []
    for (const h of this.held) {
      if (--h.rounds <= 0 || !this.faults) out.push(h.ev)
      else stillHeld.push(h)
    }
    this.held = stillHeld
    for (const ev of this.queue.splice(0)) {
      if (!this.faults || !isSequenced(ev)) {
        out.push(ev)
        continue
      }
      const r = this.random()
      if (r < this.rates.drop) {
        this.counts.dropped += 1
      } else if (r < this.rates.drop + this.rates.duplicate) {
        this.counts.duplicated += 1
        out.push(ev, ev)
      } else if (r < this.rates.drop + this.rates.duplicate + this.rates.delay) {
        this.counts.delayed += 1
        this.held.push({ ev, rounds: 1 + Math.floor(this.random() * 3) })
      } else {
        out.push(ev)
      }
    }
    if (out.length > 0) await this.handler?.(out.map((ev) => ({ id: String(this.next++), ev })))
  }

  /**
   * Delivers what is queued as one batch (no faults), one node's entries ahead of the rest —
   * as a reader of several streams hands them over, whatever order they were written in.
   */
  async deliverNodeFirst(nodeId: string): Promise<void> {
    const all = this.queue.splice(0)
    const out = [...all.filter((ev) => ev.n === nodeId), ...all.filter((ev) => ev.n !== nodeId)]
    if (out.length > 0) await this.handler?.(out.map((ev) => ({ id: String(this.next++), ev })))
  }

  get pending(): number {
    return this.queue.length + this.held.length
  }
}
