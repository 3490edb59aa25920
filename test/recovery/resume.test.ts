/**
 * What happens while no presence service runs is in the nodes' logs, and a restarted service
 * applies it from there: logouts keep their reason and time, status changes are not lost, a
 * will falls due. Real processes (one node, the presence service killed by PID), real Redis.
 */
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
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
  let redis: Redis | undefined
  const clients: MqttClient[] = []

  /** A cluster of these nodes, and a connection to its Redis to look at the logs. */
  const start = async (nodes: string[], heartbeatMs?: number) => {
    cluster = await TestCluster.start({ nodes, ...(heartbeatMs ? { heartbeatMs } : {}) })
    redis = new Redis(cluster.redis.url)
    return { c: cluster, redis }
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true)
    redis?.disconnect()
    redis = undefined
    await cluster?.stop()
  })

  it('logouts keep their reason and time, a status change is applied, a will falls due', async () => {
    const { c, redis } = await start(['a'])
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
        return Object.values(views).every((v) => v.online) && views.ray?.status === 'away' ? true : undefined
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
  })

  it('a node found moments after it started is read from its hello: a status set before that is kept', async () => {
    const { c, redis } = await start([])
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
  })

  /** A client of node `node` with a will to uma's inbox. */
  const withWill = async (c: TestCluster, node: string, userId: string) => {
    const m = await connectClient(c.url(node), userId, 'phone', {
      will: {
        topic: 'users/uma/inbox',
        payload: Buffer.from(JSON.stringify({ id: `w-${userId}`, body: `${userId} dropped` })),
        qos: 1,
        retain: false,
      },
    })
    clients.push(m)
    return m
  }
  /** uma's history as the HTTP API gives it. */
  const umaHistory = async (c: TestCluster) => {
    const res = await http(c.presence!.httpUrl, '/v1/users/uma/messages?after=0', {
      token: await c.token('ops', 'service'),
    })
    return (res.body as { messages?: Envelope[] }).messages ?? []
  }
  const wills = (p: { lines: Array<Record<string, unknown>> }) =>
    p.lines.filter((l) => l.msg === 'will published')

  it('what the stopped service had applied is not applied again: no second edge, no second will', async () => {
    // no heartbeat comes during the test: the resume point moves with the applied events
    const { c, redis } = await start(['a'], 60_000)
    const watcher = await connectClient(c.url('a'), 'wat', 'tap')
    clients.push(watcher)
    const docs: Array<{ online: boolean; reason?: string }> = []
    watcher.on('message', (topic, payload) => {
      if (topic === 'presence/yan') docs.push(JSON.parse(String(payload)))
    })
    await watcher.subscribeAsync('presence/yan', { qos: 0 })
    const yan = await withWill(c, 'a', 'yan')
    await eventually(() => (docs.at(-1)?.online === true ? true : undefined), { what: 'yan online' })
    dropSocket(yan)
    await eventually(() => (docs.at(-1)?.online === false ? true : undefined), { what: 'yan offline' })
    await eventually(async () => ((await umaHistory(c)).length === 1 ? true : undefined), {
      what: "yan's will",
    })
    const first = c.presence!
    assert.equal(wills(first).length, 1)
    const entries = await redis.xrange(streamKey('herald:', 'a'), '-', '+')
    const disc = entries.find(([, f]) => (f[1] ?? '').includes('"k":"disc"'))
    assert.equal(await redis.hget('herald:n:{a}', 'rid'), disc?.[0], "the resume point is yan's disconnect")
    await c.killPresence('SIGKILL')
    const second = await c.startPresence()
    // the new service has read a's log on and re-synced it (the store agreed)
    await eventually(() => second.lines.some((l) => l.msg === 'node re-synced' && l.nodeId === 'a'))
    await eventually(async () => ((await c.presenceOf('wat')).online ? true : undefined))
    assert.deepEqual(
      docs.map((d) => [d.online, d.reason ?? '']),
      [
        [true, ''],
        [false, 'connection-lost'],
      ],
      'yan came and went once',
    )
    assert.equal(wills(second).length, 0, 'the will was not published again')
    assert.equal((await umaHistory(c)).length, 1)
  })

  it('a node restarted while no service ran, its log read from the new hello: the old connections go node-lost, their wills once', async () => {
    const { c, redis } = await start(['a'])
    await withWill(c, 'a', 'xen')
    await eventually(async () => ((await c.presenceOf('xen')).online ? true : undefined))
    await c.killPresence('SIGKILL')
    await c.kill('a', 'SIGKILL')
    await c.startNode('a') // a new epoch; its log begins again with a hello
    // the log before that hello is gone (trimmed, as a long outage would): no resume point
    const log = streamKey('herald:', 'a')
    const hello = (await redis.xrevrange(log, '+', '-')).find(([, f]) => (f[1] ?? '').includes('"hello"'))
    assert.ok(hello)
    await redis.xtrim(log, 'MINID', hello[0])
    await c.startPresence()
    const xen = await eventually(async () => {
      const v = await c.presenceOf('xen')
      return v.online ? undefined : v
    })
    assert.equal(xen.reason, 'node-lost')
    const history = await eventually(async () => {
      const h = await umaHistory(c)
      return h.length > 0 ? h : undefined
    })
    assert.deepEqual(
      history.map((m) => m.body),
      ['xen dropped'],
    )
  })

  it('a connection that ended where its log was lost: its will is dropped with a log line, not kept for a later node death', async () => {
    const { c, redis } = await start(['a'])
    const zed = await withWill(c, 'a', 'zed')
    await eventually(async () => ((await c.presenceOf('zed')).online ? true : undefined))
    await c.killPresence('SIGKILL')
    dropSocket(zed)
    const log = streamKey('herald:', 'a')
    await eventually(async () => {
      const entries = await redis.xrange(log, '-', '+')
      return entries.some(([, f]) => (f[1] ?? '').includes('"k":"disc"')) ? true : undefined
    })
    // everything up to the disconnect is lost; the node lives on (its next heartbeat is read)
    const last = (await redis.xrevrange(log, '+', '-', 'COUNT', 1))[0]![0]
    await redis.xtrim(log, 'MINID', last)
    await redis.xdel(log, last)
    const p = await c.startPresence()
    const view = await eventually(async () => {
      const v = await c.presenceOf('zed')
      return v.online ? undefined : v
    })
    assert.equal(view.reason, 'connection-lost')
    await eventually(() => p.lines.some((l) => String(l.msg).startsWith('wills dropped')))
    assert.equal(await redis.hlen('herald:wills:{a}'), 0)
    assert.equal((await umaHistory(c)).length, 0)
  })
})
