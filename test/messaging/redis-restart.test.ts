/**
 * Delivery across a Redis restart with AOF (real processes): messages recorded before the
 * restart and sent after it reach a live device once each, and a device that was away the whole
 * time gets all of them when it comes back on the other node (session + catch-up by offset).
 */
import assert from 'node:assert/strict'
import { HeraldClient } from '../../clients/sdk/index.js'
import { TestCluster } from '../harness/cluster.js'
import { eventually } from '../harness/wait.js'

describe('messaging across a Redis restart with AOF (real processes)', function () {
  this.timeout(120_000)
  let cluster: TestCluster
  const open: HeraldClient[] = []
  const sdk = async (node: string, userId: string, deviceId: string, catchUpAfter?: string) => {
    const c = await HeraldClient.connect({
      url: cluster.url(node),
      userId,
      deviceId,
      token: await cluster.token(userId),
      reconnectMinMs: 200,
      // a live delivery lost while the bus reconnects to Redis comes with the next reconciliation
      catchUpEveryMs: 1000,
      ...(catchUpAfter !== undefined ? { catchUpAfter } : {}),
    })
    open.push(c)
    return c
  }

  before(async () => {
    cluster = await TestCluster.start({ nodes: ['a', 'b'], aof: true })
  })
  after(async () => {
    for (const c of open) await c.close().catch(() => {})
    await cluster?.stop()
  })

  it('messages before and after the restart reach the live phone once and the returning tablet in full', async () => {
    const tablet = await sdk('b', 'bob', 'tablet')
    await tablet.close() // away for the whole test, its session kept
    const phone = await sdk('a', 'bob', 'phone')
    const onPhone: string[] = []
    phone.on('message', (m) => onPhone.push(m.id))
    const alice = await sdk('a', 'alice', 'laptop')
    const ids = Array.from({ length: 40 }, (_v, i) => `r${i}`)
    for (const id of ids.slice(0, 20)) await alice.send('bob', id, { id })
    await eventually(() => onPhone.length >= 20 || undefined)

    await cluster.redis.restart() // clean shutdown, AOF on: comes back with its data
    // sends wait for Redis (no PUBACK until recorded); the SDK keeps each id across retries.
    // A phone that stays connected may lose a live delivery while node a's bus reconnects to
    // Redis: the message was recorded, and the SDK's periodic catch-up brings it
    for (const id of ids.slice(20)) await alice.send('bob', id, { id })
    await eventually(() => (onPhone.length >= 40 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'all 40 on the phone',
    })
    assert.deepEqual([...onPhone].sort(), [...ids].sort(), 'the phone got each message once')

    const back = await sdk('a', 'bob', 'tablet', '')
    const onTablet: string[] = []
    back.on('message', (m) => onTablet.push(m.id))
    await eventually(() => (onTablet.length >= 40 ? true : undefined), {
      timeoutMs: 30_000,
      what: 'all 40 on the tablet',
    })
    assert.deepEqual([...onTablet].sort(), [...ids].sort(), 'the tablet got each message once')
  })
})
