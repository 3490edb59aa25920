/**
 * The presence event log in Redis (streams): what the presence service may rely on when it
 * reads every node's log.
 */
import assert from 'node:assert/strict'
import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { RedisEventSink, RedisEventSource, streamKey } from '../../services/events/redis-log.js'
import type { LogEntry, NodeEvent } from '../../services/events/types.js'
import { prefixedRedis } from '../harness/shared-redis.js'
import { eventually } from '../harness/wait.js'

const logger = pino({ level: 'silent' })

const hb = (n: string, s: number): NodeEvent => ({
  k: 'hb',
  n,
  e: 1,
  s,
  ts: Date.now(),
  count: 0,
  digest: 0,
  every: 1000,
})

describe('Redis event log', () => {
  it("a node whose log began before a read returned is discovered before that read's entries are handled", async () => {
    const { url, redis, prefix, cleanup } = await prefixedRedis('evt', 'evt-test')
    const readerName = `evt-reader-${prefix}`
    const reader = createRedis(url, { name: readerName, logger })
    const opts = { redis, prefix, logger }
    const a = new RedisEventSink(opts, 'a')
    const b = new RedisEventSink(opts, 'b')
    const source = new RedisEventSource(opts, reader)
    // what the reader did, in order
    const order: string[] = []
    try {
      source.start(
        async (batch: LogEntry[]) => {
          for (const { ev } of batch) order.push(`handled ${ev.n}:${ev.s}`)
        },
        async (nodeId) => {
          order.push(`discovered ${nodeId}`)
        },
      )
      a.append(hb('a', 1))
      await a.flush()
      await eventually(async () => order.includes('discovered a') || undefined, { what: 'node a discovered' })
      a.append(hb('a', 2))
      await a.flush()
      await eventually(async () => order.includes('handled a:2') || undefined, { what: "a's entry handled" })
      // the reader is blocked on a's log alone when b's log begins, and then a writes (as a
      // takeover: b's connect makes a's disconnect)
      await eventually(
        async () => {
          const list = String(await redis.client('LIST'))
          const line = list.split('\n').find((l) => l.includes(` name=${readerName} `))
          return line && / flags=b /.test(line) && / cmd=xread /.test(line) ? true : undefined
        },
        { what: 'the reader blocked in XREAD' },
      )
      b.append(hb('b', 1))
      await b.flush()
      a.append(hb('a', 3))
      await a.flush()
      await eventually(async () => order.includes('handled a:3') || undefined, {
        what: "a's next entry handled",
      })
      assert.ok(
        order.indexOf('discovered b') !== -1 && order.indexOf('discovered b') < order.indexOf('handled a:3'),
        order.join(', '),
      )
    } finally {
      await source.stop()
      await a.close()
      await b.close()
      await cleanup()
    }
  })
  it('a write batch is one script that stops taking events at its size cap, and every event lands in order', async () => {
    const { redis, prefix, cleanup } = await prefixedRedis('evt', 'evt-test')
    const maxBatchChars = 1000
    const sink = new RedisEventSink({ redis, prefix, logger, maxBatchChars }, 'm')
    const key = streamKey(prefix, 'm')
    const monitor = await redis.monitor()
    try {
      sink.append(hb('m', 0)) // the script is loaded: what follows is one EVALSHA per batch
      await sink.flush()
      const batches: string[][] = []
      monitor.on('monitor', (_time: string, args: string[]) => {
        // EVALSHA sha numkeys stream nodes nodeId maxLen ...events
        if (args[0]?.toLowerCase() === 'evalsha' && args[3] === key) batches.push(args.slice(7))
      })
      const events = Array.from({ length: 50 }, (_, i) => hb('m', i + 1))
      for (const ev of events) sink.append(ev)
      await sink.flush()
      await eventually(async () => (batches.flat().length === 50 ? true : undefined), {
        what: 'every batch seen by MONITOR',
      })
      assert.ok(
        batches.length > 1 && batches.some((b) => b.length > 1),
        `batches of ${batches.map((b) => b.length)}`,
      )
      for (const b of batches) {
        // only the event that crossed the cap may lie beyond it
        const before = b.slice(0, -1).reduce((n, json) => n + json.length, 0)
        assert.ok(before < maxBatchChars, `a batch of ${b.length} events began past the cap`)
      }
      const entries = await redis.xrange(key, '-', '+')
      assert.deepEqual(
        entries.map(([, fields]) => (JSON.parse(fields[1] ?? '') as NodeEvent).s),
        [0, ...events.map((ev) => ev.s)],
      )
    } finally {
      monitor.disconnect()
      await sink.close()
      await cleanup()
    }
  })
})
