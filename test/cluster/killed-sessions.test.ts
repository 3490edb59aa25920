/**
 * Persistent sessions held by a node that dies without closing them (SIGKILL) are bounded like
 * any other offline session: their queue is capped and, idle long enough, they are removed.
 * Only a node that closes a socket used to mark its session idle, so these stayed uncapped and
 * never expired. Real processes killed by PID, real Redis.
 */
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import { TestCluster } from '../harness/cluster.js'
import { connectClient } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

describe('persistent sessions of a killed node', function () {
  this.timeout(120_000)
  let cluster: TestCluster | undefined
  let redis: Redis | undefined
  const clients: MqttClient[] = []

  afterEach(async () => {
    for (const c of clients.splice(0)) c.end(true)
    redis?.disconnect()
    redis = undefined
    await cluster?.stop()
  })

  it('are capped and expired as if their devices had gone away, one live on another node is not', async () => {
    cluster = await TestCluster.start({
      nodes: ['a', 'b'],
      env: { HERALD_SESSION_MAX_QUEUE: '5', HERALD_SESSION_MAX_IDLE_MS: '3000' },
    })
    const c = cluster
    redis = new Redis(c.redis.url)
    const r = redis
    const persistent = async (node: string, userId: string) => {
      const m = await connectClient(c.url(node), userId, 'phone', { clean: false })
      m.on('error', () => {})
      clients.push(m)
      await m.subscribeAsync(`users/${userId}/inbox`, { qos: 1 })
      return m
    }
    await persistent('a', 'dave') // on the node that dies, never back
    const ivy = await persistent('b', 'ivy') // on a live node, connected throughout
    const backend = await connectClient(c.url('b'), 'ops', 'be', { token: await c.token('ops', 'service') })
    clients.push(backend)
    const received: string[] = []
    ivy.on('message', (_t, p) => received.push((JSON.parse(p.toString()) as { id: string }).id))
    await c.kill('a') // dave's socket closes with it: node a never marks the session idle
    for (let i = 1; i <= 12; i++) {
      await backend.publishAsync('users/dave/inbox', JSON.stringify({ id: `d${i}`, body: i }), { qos: 1 })
    }
    const queue = 'outgoing:dave%2Fphone'
    const subs = 'client:dave%2Fphone'
    // the janitor passes every second; dave's session is idle from its node's last refresh: capped,
    // then removed once idle for 3 s
    await eventually(
      async () => ((await r.exists(subs)) === 0 && (await r.llen(queue)) === 0 ? true : undefined),
      {
        what: "dave's session removed",
        timeoutMs: 20_000,
      },
    )
    // ivy, connected to a live node all along, keeps her session
    assert.deepEqual(await r.hkeys('client:ivy%2Fphone'), ['users/ivy/inbox'])
    await backend.publishAsync('users/ivy/inbox', JSON.stringify({ id: 'i1', body: 1 }), { qos: 1 })
    await eventually(() => (received.includes('i1') ? true : undefined), { what: 'ivy gets i1' })
  })

  it('a clean connect is never recorded as a held session (only persistent ones are refreshed and swept)', async () => {
    cluster = await TestCluster.start({ nodes: ['a'] })
    const c = cluster
    redis = new Redis(c.redis.url)
    const r = redis
    const erin = await connectClient(c.url('a'), 'erin', 'phone', { clean: true })
    clients.push(erin)
    // one connection writes both in order: once frank's session is held, erin's connect is done
    const frank = await connectClient(c.url('a'), 'frank', 'phone', { clean: false })
    clients.push(frank)
    await eventually(
      async () => ((await r.zscore('herald:sessions:live', 'frank/phone')) !== null ? true : undefined),
      { what: "frank's persistent session held" },
    )
    assert.equal(await r.zscore('herald:sessions:live', 'erin/phone'), null)
  })
})
