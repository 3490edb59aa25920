/**
 * No loss under churn (Redis mode, real processes): 50 users, 10,000 QoS 1 messages, recipients
 * dropping and reconnecting at random, presence flowing to the same clients, one node SIGKILLed
 * mid-run, and three devices away for the whole run with a backlog over 1,000 each. Every
 * message id reaches every device of its recipient — live, by session, or by catch-up — and the
 * application sees each exactly once (the SDK de-duplicates by (from, id)).
 * HERALD_CHURN_MESSAGES scales it (default 10,000).
 */
import assert from 'node:assert/strict'
import type { IClientOptions } from 'mqtt'
import { HeraldClient } from '../../clients/sdk/index.js'
import { TestCluster } from '../harness/cluster.js'
import { prng } from '../harness/faulty-log.js'
import { eventually } from '../harness/wait.js'

const MESSAGES = Number(process.env.HERALD_CHURN_MESSAGES ?? 10_000)
const USERS = 50
const LAGGARDS = 3 // users u0..u2 also have a tablet that is away the whole run
const SEED = 7

describe('messaging: no loss under churn (Redis, real processes)', function () {
  this.timeout(240_000)
  let cluster: TestCluster
  const devices: HeraldClient[] = []

  before(async () => {
    cluster = await TestCluster.start({ nodes: ['a', 'b', 'c'], heartbeatMs: 500 })
  })
  after(async () => {
    for (const d of devices) await d.close().catch(() => {})
    await cluster?.stop()
  })

  /** mqtt.js fails over between the listed nodes when one is gone. */
  const servers = (...ids: string[]): IClientOptions => ({
    servers: ids.map((id) => ({ host: '127.0.0.1', port: Number(new URL(cluster.url(id)).port) })),
  })

  it(`${MESSAGES} messages to ${USERS} users: every id reaches every device exactly once`, async () => {
    const rand = prng(SEED)
    const users = Array.from({ length: USERS }, (_v, i) => `u${i}`)
    const got = new Map<string, string[]>() // device -> message ids, as the application saw them
    const connect = async (userId: string, deviceId: string, nodes: string[], catchUpAfter?: string) => {
      const d = await HeraldClient.connect({
        url: cluster.url(nodes[0]!),
        userId,
        deviceId,
        token: await cluster.token(userId),
        ...(catchUpAfter !== undefined ? { catchUpAfter } : {}),
        reconnectMinMs: 200,
        mqtt: servers(...nodes),
      })
      const key = `${userId}/${deviceId}`
      if (!got.has(key)) got.set(key, [])
      d.on('message', (m) => got.get(key)!.push(m.id))
      devices.push(d)
      return d
    }
    // phones spread over the three nodes; node b dies mid-run, its phones fail over to a
    const phones: HeraldClient[] = []
    for (const [i, u] of users.entries()) {
      const home = ['a', 'b', 'c'][i % 3]!
      const phone = await connect(u, 'phone', home === 'b' ? ['b', 'a'] : [home, 'a'])
      await phone.watch(users.filter((_v, j) => j !== i).slice(0, 10)) // presence to the same clients
      phones.push(phone)
    }
    // the laggards' tablets make their persistent sessions, then go away for the whole run
    for (let i = 0; i < LAGGARDS; i++) await (await connect(`u${i}`, 'tablet', ['a'])).close()
    devices.splice(devices.length - LAGGARDS, LAGGARDS)

    const sender = await HeraldClient.connect({
      url: cluster.url('c'),
      userId: 'ops',
      deviceId: 'sender',
      token: await cluster.token('ops', 'service'),
    })
    devices.push(sender)
    const expected = new Map<string, string[]>(users.map((u) => [u, []]))
    const recipientOf = (k: number) =>
      k < LAGGARDS * 1200 ? `u${k % LAGGARDS}` : users[LAGGARDS + (k % (USERS - LAGGARDS))]!
    let killed = false
    const WINDOW = 100
    for (let k = 0; k < MESSAGES; k += WINDOW) {
      const batch: Array<Promise<unknown>> = []
      for (let j = k; j < Math.min(MESSAGES, k + WINDOW); j++) {
        const to = recipientOf(j)
        const id = `m${j}`
        expected.get(to)!.push(id)
        batch.push(sender.send(to, { n: j }, { id }))
      }
      await Promise.all(batch)
      // churn: a few phones lose their socket (no DISCONNECT) and reconnect by themselves
      for (let n = 0; n < 3; n++) {
        const phone = phones[Math.floor(rand() * phones.length)]!
        ;(phone as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy()
      }
      if (!killed && k >= MESSAGES / 2) {
        killed = true
        await cluster.kill('b') // SIGKILL, mid-run
      }
    }

    // every phone has everything, each once
    for (const u of users) {
      const want = [...expected.get(u)!].sort()
      await eventually(() => (got.get(`${u}/phone`)!.length >= want.length ? true : undefined), {
        timeoutMs: 60_000,
        what: `${u}/phone to have its ${want.length} messages (has ${got.get(`${u}/phone`)!.length})`,
      })
      assert.deepEqual([...got.get(`${u}/phone`)!].sort(), want, `${u}/phone: each id exactly once`)
    }
    // the tablets come back: more than 1,000 waiting each; the session gives what it kept,
    // the catch-up from the start of history the rest
    for (let i = 0; i < LAGGARDS; i++) {
      const u = `u${i}`
      const want = [...expected.get(u)!].sort()
      assert.ok(want.length > 1000)
      await connect(u, 'tablet', ['a'], '')
      await eventually(() => (got.get(`${u}/tablet`)!.length >= want.length ? true : undefined), {
        timeoutMs: 60_000,
        what: `${u}/tablet to catch up ${want.length} messages (has ${got.get(`${u}/tablet`)!.length})`,
      })
      assert.deepEqual([...got.get(`${u}/tablet`)!].sort(), want, `${u}/tablet: each id exactly once`)
    }
  })
})
