/**
 * The in-process event log of the embedded (single-process) Herald: the same ordered, per-node
 * log semantics as the Redis Stream log, without Redis.
 */
import type { EventSink, EventSource, LogEntry, NodeEvent } from './types.js'

interface NodeLog {
  entries: LogEntry[]
  next: number
}

export class MemoryEventLog {
  private readonly logs = new Map<string, NodeLog>()
  private wake: (() => void) | undefined

  sink(nodeId: string): EventSink {
    const log = this.log(nodeId)
    return {
      append: (ev: NodeEvent) => {
        log.entries.push({ id: String(log.next++), ev })
        this.wake?.()
      },
      flush: async () => {},
      close: async () => {},
    }
  }

  /** The embedded reader sees every node's log from its first entry, so it never skips history. */
  source(): EventSource {
    let running = true
    let busy = false
    /** Nodes with entries in the batch being handled. */
    const inHand = new Set<string>()
    let handler: ((batch: LogEntry[]) => Promise<void>) | undefined
    const loop = async () => {
      while (running) {
        const batch: LogEntry[] = []
        inHand.clear()
        for (const [nodeId, log] of this.logs) {
          if (log.entries.length === 0) continue
          batch.push(...log.entries.splice(0, 1000))
          inHand.add(nodeId)
        }
        if (batch.length === 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve
          })
          this.wake = undefined
          continue
        }
        busy = true
        try {
          await handler?.(batch)
        } finally {
          busy = false
        }
      }
    }
    return {
      start: (h) => {
        handler = h
        void loop()
      },
      seekToEnd: async (nodeId) => {
        this.log(nodeId).entries.length = 0
      },
      nodes: async () => [...this.logs.keys()],
      caughtUp: async () => !busy && [...this.logs.values()].every((l) => l.entries.length === 0),
      // a read: it must not create a log for a node it has never seen
      behind: async (nodeId) =>
        (busy && inHand.has(nodeId)) || (this.logs.get(nodeId)?.entries.length ?? 0) > 0,
      stop: async () => {
        running = false
        this.wake?.()
      },
    }
  }

  private log(nodeId: string): NodeLog {
    let log = this.logs.get(nodeId)
    if (!log) {
      log = { entries: [], next: 1 }
      this.logs.set(nodeId, log)
    }
    return log
  }
}
