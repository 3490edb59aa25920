/**
 * A will is never lost to a presence service killed while it handles it: a will due is read,
 * published and only then dropped, so the next service publishes what the killed one had not
 * (again, if it had: the same id, de-duplicated). Real processes killed by PID, real Redis.
 */
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import type { MqttClient } from 'mqtt'
import type { Envelope } from '../../services/core/envelope.js'
import { TestCluster } from '../harness/cluster.js'
import { connectClient } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

describe('wills and a presence service killed while it publishes them', function () {
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

  it("a dead node's will is published once when the service is killed the moment it handles it", async () => {
    cluster = await TestCluster.start({ nodes: ['a', 'b'] })
    const c = cluster
    redis = new Redis(c.redis.url)
    const r = redis
    const willer = await connectClient(c.url('a'), 'wendy', 'dev', {
      will: {
        topic: 'users/rita/inbox',
        payload: Buffer.from(JSON.stringify({ id: 'bye', body: 'gone' })),
        qos: 1,
        retain: false,
      },
    })
    willer.on('error', () => {})
    clients.push(willer)
    // other connections on the node: its sweep takes a while, as on a busy node
    for (let i = 0; i < 300; i += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, (_, j) => connectClient(c.url('a'), `crowd${i + j}`, 'd')),
      )
      for (const m of batch) m.on('error', () => {})
      clients.push(...batch)
    }
    const wills = 'herald:wills:{a}'
    const history = 'herald:m:{rita}:h'
    await eventually(async () => ((await r.hlen(wills)) === 1 ? true : undefined), { what: 'the will kept' })
    await c.kill('a')
    // the moment the service handles the will (takes it from the store, or records it), it
    // dies: read back to back, not every 20 ms as `eventually` does (the window is a few ms)
    const deadline = Date.now() + 20_000
    while ((await r.hlen(wills)) === 1 && (await r.xlen(history)) === 0) {
      if (Date.now() > deadline) assert.fail('the will was never handled')
    }
    await c.killPresence('SIGKILL')
    await c.startPresence()
    const ids = async () =>
      (await r.xrange(history, '-', '+')).map(([, f]) => (JSON.parse(f[1]!) as Envelope).id)
    await eventually(async () => ((await ids()).length > 0 ? true : undefined), {
      what: 'the will in the history',
      timeoutMs: 20_000,
    })
    // the new service has swept the node (wendy offline): nothing more comes
    await eventually(async () => ((await c.presenceOf('wendy')).online ? undefined : true), {
      what: 'wendy offline',
    })
    assert.equal((await ids()).filter((id) => id.startsWith('bye-w')).length, 1)
    assert.equal(await r.hlen(wills), 0)
  })
})
