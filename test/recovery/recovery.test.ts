/**
 * Presence heals itself: the presence service and Redis can die at any moment. Real processes
 * killed by PID, a real redis-server stopped, wiped or flushed; truth from the clients.
 */
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { createRedis } from '../../services/core/redis.js'
import { sinkConnectionName, streamKey } from '../../services/events/redis-log.js'
import { Churn } from '../harness/churn.js'
import { TestCluster } from '../harness/cluster.js'
import { connectClient } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

const USERS = Array.from({ length: 12 }, (_v, i) => `r${i}`)
const DEVICES = ['phone', 'laptop', 'tab']

describe('presence recovery', function () {
  this.timeout(180_000)
  let cluster: TestCluster
  let churn: Churn

  const start = async (opts: { aof?: boolean } = {}) => {
    cluster = await TestCluster.start({ nodes: ['a', 'b'], aof: opts.aof ?? false })
    churn = new Churn(cluster, USERS, DEVICES, 42)
  }
  /** Presence equals the truth, connection by connection, within `ms`. */
  const healsWithin = async (ms: number, what: string) => {
    const from = Date.now()
    let last: string | undefined
    await eventually(
      async () => {
        last = await churn.compare()
        return last === undefined ? true : undefined
      },
      { timeoutMs: ms, what: `${what} (last difference: ${last})` },
    ).catch((err: Error) => {
      // what the presence services said, for the post-mortem (git-ignored)
      const dir = fileURLToPath(new URL('../../test-artifacts/recovery/', import.meta.url))
      mkdirSync(dir, { recursive: true })
      for (const [i, p] of cluster.presences.entries()) {
        writeFileSync(`${dir}presence-${i}.log`, p.lines.map((l) => JSON.stringify(l)).join('\n'))
      }
      throw new Error(`${err.message}; last difference: ${last}; service logs in ${dir}`)
    })
    return Date.now() - from
  }

  afterEach(async () => {
    churn?.close()
    await cluster?.stop()
  })

  it('SIGKILL of the presence service during churn: within 2 s of its restart presence equals the truth', async () => {
    await start()
    await churn.run(60)
    await healsWithin(10_000, 'presence right before the kill')
    await cluster.killPresence('SIGKILL')
    await churn.run(60) // the churn goes on while no presence service runs
    await cluster.startPresence()
    const took = await healsWithin(2000, 'presence equal to the truth within 2 s of the restart')
    assert.ok(took <= 2000)
    assert.ok(
      churn.counts.moves + churn.counts.drops + churn.counts.logouts > 20,
      JSON.stringify(churn.counts),
    )
  })

  it('overlapping presence services: one writer at a time, a clean handover, nothing lost', async () => {
    await start()
    const second = await cluster.startPresence({ HERALD_NODE_ID: 'presence-2' }) // a rolling deploy
    await churn.run(40)
    await healsWithin(10_000, 'presence with two presence services running')
    const writers = (lines: Array<Record<string, unknown>>) =>
      lines.filter((l) => l.msg === 'this presence service is the writer').length
    assert.equal(writers(second.lines), 0, 'the second service waits while the first holds the lease')
    // the first one goes away without a word; the standby takes over with a new epoch
    await churn.run(20)
    await cluster.killPresence('SIGKILL', 0)
    await churn.run(40)
    await eventually(() => (writers(second.lines) === 1 ? true : undefined), {
      what: 'the standby takes over',
    })
    // the handover waits for the lease to lapse and re-syncs every node: a generous bound under load
    await healsWithin(20_000, 'presence after the handover')
  })

  for (const fault of [
    'restart with AOF',
    'restart without AOF',
    'FLUSHALL while running',
    'unreachable for 30 s',
  ] as const) {
    it(`Redis ${fault}: nodes keep serving, nothing crashes, presence is rebuilt`, async function () {
      await start({ aof: fault === 'restart with AOF' || fault === 'unreachable for 30 s' })
      await churn.run(50)
      await healsWithin(10_000, 'presence before the fault')
      const pids = [...cluster.nodes.values()].map((n) => n.pid).concat(cluster.presence!.pid)
      if (fault === 'FLUSHALL while running') {
        await cluster.flushall()
      } else if (fault === 'unreachable for 30 s') {
        await cluster.redis.stop()
        await churn.run(10) // connects refused or delayed while Redis is away: counted, not fatal
        await new Promise((r) => setTimeout(r, 30_000)) // the outage itself is the point here
        await cluster.redis.restart()
      } else {
        await cluster.redis.restart({ wipe: fault === 'restart without AOF' })
      }
      await churn.run(30)
      const took = await healsWithin(30_000, `presence rebuilt after ${fault}`)
      for (const p of [...cluster.nodes.values(), cluster.presence!]) {
        assert.equal(p.child.exitCode, null, `process ${p.pid} still running`)
      }
      assert.deepEqual([...cluster.nodes.values()].map((n) => n.pid).concat(cluster.presence!.pid), pids)
      // every connection dropped with Redis, none with a node: the connection rule (a node's
      // log connection gone) must not call a live node dead after a restart
      const unplugged = cluster.presence!.lines.filter((l) => l.cause === 'connection-gone')
      assert.deepEqual(unplugged, [], 'no live node declared dead by its connection')
      this.test!.title += ` (healed in ${took} ms)`
    })
  }

  it('Redis back from an older snapshot: the rollback is seen at the next writer check and presence is rebuilt', async () => {
    await start()
    await churn.run(50)
    await healsWithin(10_000, 'presence before the snapshot')
    const redis = createRedis(cluster.redis.url, { name: 'test-snapshot', logger: pino({ level: 'silent' }) })
    await redis.save()
    redis.disconnect()
    const dump = join(cluster.redis.dir, 'dump.rdb')
    copyFileSync(dump, `${dump}.old`)
    // what happens after the snapshot: gone when Redis comes back from it
    await churn.run(50)
    await healsWithin(10_000, 'presence after the snapshot')
    const writerTurns = () =>
      cluster.presence!.lines.filter((l) => l.msg === 'this presence service is the writer').length
    const turnsBefore = writerTurns()
    await cluster.redis.kill()
    copyFileSync(`${dump}.old`, dump)
    await cluster.redis.restart()
    // Seen as a data loss at the writer's next check — or, when Redis took longer to come back
    // than the writer's lease, the writer stepped down and took the lease again with a new
    // epoch, which rebuilds everything as well. Either way the older store is not trusted.
    await eventually(
      () =>
        cluster.presence!.lines.some((l) => /^the store lost its data/.test(String(l.msg))) ||
        writerTurns() > turnsBefore
          ? true
          : undefined,
      { what: 'the rollback seen as a data loss (or a new writer epoch)', timeoutMs: 20_000 },
    )
    await healsWithin(30_000, 'presence rebuilt after the rollback')
  })

  it("after a Redis restart, a live node whose log connection is not back yet is not dead by its connection (the service's own is too young to tell)", async () => {
    // 2 s heartbeats: dead by silence after 6 s; by silence and a missing log connection after
    // 3 s, but only once the service's own connection is 6 s old (nodes reconnect on their own
    // schedule after a restart)
    cluster = await TestCluster.start({ nodes: ['a'], aof: true, heartbeatMs: 2000 })
    const sam = await connectClient(cluster.url('a'), 'sam', 'phone')
    const redis = createRedis(cluster.redis.url, { name: 'test-watch', logger: pino({ level: 'silent' }) })
    try {
      await eventually(async () => (await cluster.presenceOf('sam')).online || undefined, {
        what: 'sam online',
      })
      // right after one of a's heartbeats, so its silence is known: frozen, then Redis restarts,
      // which closes a's log connection, and a frozen process cannot open it again
      for (;;) {
        const read = (await redis.xread('BLOCK', 5000, 'STREAMS', streamKey('herald:', 'a'), '$')) as Array<
          [string, Array<[string, string[]]>]
        > | null
        if (read?.[0]?.[1].some(([, f]) => String(f[1]).includes('"k":"hb"'))) break
      }
      const a = cluster.node('a').pid
      process.kill(a, 'SIGSTOP')
      const frozenAt = Date.now()
      try {
        await cluster.redis.restart()
        // the silence passes 1.5 heartbeats with a's log connection absent; the time passing is
        // the point (as a keepalive expiry), 4 s of the 6 a may be silent
        await new Promise((r) => setTimeout(r, Math.max(0, frozenAt + 4000 - Date.now())))
        const list = String(await redis.client('LIST'))
        assert.ok(!list.includes(`name=${sinkConnectionName('a')} `), "a's log connection is absent")
      } finally {
        process.kill(a, 'SIGCONT')
      }
      await eventually(
        async () =>
          String(await redis.client('LIST')).includes(`name=${sinkConnectionName('a')} `) || undefined,
        { what: "a's log connection back" },
      )
      const view = await eventually(async () => {
        const v = await cluster.presenceOf('sam')
        return v.online && v.connections === 1 ? v : undefined
      })
      assert.equal(view.connectionsDetail[0]?.nodeId, 'a')
      const dead = cluster.presence!.lines.filter((l) => l.msg === 'node is dead; its connections go offline')
      assert.deepEqual(dead, [], 'a live node was declared dead')
    } finally {
      sam.end(true)
      redis.disconnect()
    }
  })
})
