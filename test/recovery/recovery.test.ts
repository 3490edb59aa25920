/**
 * Presence heals itself: the presence service and Redis can die at any moment. Real processes
 * killed by PID, a real redis-server stopped, wiped or flushed; truth from the clients.
 */
import assert from 'node:assert/strict'
import { mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Churn } from '../harness/churn.js'
import { TestCluster } from '../harness/cluster.js'
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
})
