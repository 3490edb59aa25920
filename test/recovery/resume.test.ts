/**
 * What happens while no presence service runs is in the nodes' logs, and a restarted service
 * applies it from there: logouts keep their reason and time, status changes are not lost, a
 * will falls due. Real processes (one node, the presence service killed by PID), real Redis.
 */
import assert from 'node:assert/strict'
import type { MqttClient } from 'mqtt'
import { compareOffsets, type Envelope } from '../../services/core/envelope.js'
import { streamKey } from '../../services/events/redis-log.js'
import { TestCluster } from '../harness/cluster.js'
import { http } from '../harness/http.js'
import { connectClient, dropSocket } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

describe('presence service restart: the logs are read on from where the store was right', function () {
  this.timeout(60_000)
  let cluster: TestCluster | undefined
  const clients: MqttClient[] = []

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true)
    await cluster?.stop()
  })

  it('logouts keep their reason and time, a status change is applied, a will falls due', async () => {
    cluster = await TestCluster.start({ nodes: ['a'] })
    const c = cluster
    const { Redis } = await import('ioredis')
    const redis = new Redis(c.redis.url)
    try {
      const client = async (userId: string, opts = {}) => {
        const m = await connectClient(c.url('a'), userId, 'phone', opts)
        clients.push(m)
        return m
      }
      // the service has found node a's log (a status set before that is the next test's)
      await eventually(() => c.presence!.lines.some((l) => l.msg === 'node re-synced' && l.nodeId === 'a'))
      const ray = await client('ray')
      const sam = await client('sam', {
        will: {
          topic: 'users/uma/inbox',
          payload: Buffer.from(JSON.stringify({ id: 'w1', body: 'sam dropped' })),
          qos: 1,
          retain: false,
        },
      })
      const tom = await client('tom')
      await ray.publishAsync('users/ray/status', JSON.stringify({ status: 'away' }), { qos: 1 })
      let seen = ''
      await eventually(
        async () => {
          const views = await c.presenceMany(['ray', 'sam', 'tom'])
          seen = JSON.stringify(Object.values(views).map((v) => [v.userId, v.online, v.status]))
          return Object.values(views).every((v) => v.online) && views.ray?.status === 'away'
            ? true
            : undefined
        },
        { what: 'ray (away), sam and tom online' },
      ).catch((err: Error) => {
        // what the service did, for the post-mortem
        const log = c.presence!.lines.map((l) => JSON.stringify(l)).join('\n')
        throw new Error(`${err.message}; last seen ${seen}; presence log:\n${log}`)
      })
      // a heartbeat applied after that: the store says where node a's log may be read on from
      const log = streamKey('herald:', 'a')
      const last = (await redis.xrevrange(log, '+', '-', 'COUNT', 1))[0]![0]
      await eventually(async () => {
        const rid = await redis.hget('herald:n:{a}', 'rid')
        return rid && compareOffsets(rid, last) >= 0 ? true : undefined
      })

      await c.killPresence('SIGKILL')
      await ray.publishAsync('users/ray/status', JSON.stringify({ status: 'busy' }), { qos: 1 })
      dropSocket(sam)
      const tomLeft = Date.now()
      await tom.endAsync()
      // all three are in node a's log before a presence service runs again
      await eventually(async () => {
        const entries = (await redis.xrange(log, `(${last}`, '+')).map(([, f]) => f[1] ?? '')
        const has = (s: string) => entries.some((e) => e.includes(s))
        return has('"status":"busy"') && has('"userId":"sam"') && has('"userId":"tom"') ? true : undefined
      })
      const restarted = Date.now()
      await c.startPresence()

      const views = await eventually(async () => {
        const v = await c.presenceMany(['ray', 'sam', 'tom'])
        return !v.sam?.online && !v.tom?.online && v.ray?.status === 'busy' ? v : undefined
      })
      assert.equal(views.tom?.reason, 'logout', 'the logout as the node logged it')
      assert.ok(views.tom!.lastSeen >= tomLeft - 1000 && views.tom!.lastSeen < restarted, 'when tom left')
      assert.equal(views.sam?.reason, 'connection-lost')
      assert.equal(views.ray?.online, true)
      // sam's connection ended without a DISCONNECT: his will reached uma's history
      const history = await eventually(async () => {
        const res = await http(c.presence!.httpUrl, '/v1/users/uma/messages?after=0', {
          token: await c.token('ops', 'service'),
        })
        const messages = (res.body as { messages?: Envelope[] }).messages ?? []
        return messages.length > 0 ? messages : undefined
      })
      assert.deepEqual(
        history.map((m) => [m.from, m.body]),
        [['sam', 'sam dropped']],
      )
      const resumed = c.presence!.lines.find(
        (l) => l.msg === "reading the node's log from where the store was right",
      )
      assert.equal(resumed?.nodeId, 'a')
    } finally {
      redis.disconnect()
    }
  })

  it('a node found moments after it started is read from its hello: a status set before that is kept', async () => {
    cluster = await TestCluster.start({ nodes: [] })
    const c = cluster
    const { Redis } = await import('ioredis')
    const redis = new Redis(c.redis.url)
    try {
      await c.killPresence('SIGKILL') // nobody reads the logs while node b starts and is used
      await c.startNode('b')
      const ann = await connectClient(c.url('b'), 'ann', 'phone')
      clients.push(ann)
      await ann.publishAsync('users/ann/status', JSON.stringify({ status: 'busy' }), { qos: 1 })
      await eventually(async () => {
        const entries = (await redis.xrange(streamKey('herald:', 'b'), '-', '+')).map(([, f]) => f[1] ?? '')
        return entries.some((e) => e.includes('"status":"busy"')) ? true : undefined
      })
      await c.startPresence()
      const view = await eventually(async () => {
        const v = await c.presenceOf('ann')
        return v.online && v.status === 'busy' ? v : undefined
      })
      assert.equal(view.connections, 1)
      const found = c.presence!.lines.find(
        (l) => l.msg === "reading the node's log from its start: it began moments ago",
      )
      assert.equal(found?.nodeId, 'b')
    } finally {
      redis.disconnect()
    }
  })
})
