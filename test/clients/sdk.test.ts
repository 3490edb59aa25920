/**
 * The SDK against a real Herald: presence events, messages once each with receipts, typed
 * refusals, catch-up after a dropped connection, two devices of one user side by side.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { HeraldClient, type Message, RejectedError } from '../../clients/sdk/index.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { eventually } from '../harness/wait.js'

describe('SDK (clients/sdk)', function () {
  this.timeout(30_000)
  let h: TestHerald
  const open: HeraldClient[] = []
  const sdk = async (userId: string, deviceId: string, rejectWindowMs = 0) => {
    const c = await HeraldClient.connect({
      url: h.mqttUrl,
      userId,
      deviceId,
      token: await h.token(userId),
      rejectWindowMs,
    })
    open.push(c)
    return c
  }
  beforeEach(async () => {
    h = await startTestHerald()
  })
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close().catch(() => {})
    await h.close()
  })

  it('watch: online, status and offline events for a watched user', async () => {
    const bob = await sdk('bob', 'phone')
    await bob.watch(['alice'])
    const online = once(bob, 'online')
    const alice = await sdk('alice', 'phone')
    assert.equal((await online)[0].userId, 'alice')
    const status = once(bob, 'status')
    await alice.setStatus('away', { note: 'lunch' })
    assert.equal((await status)[0].status, 'away')
    const offline = once(bob, 'offline')
    await alice.close()
    assert.equal((await offline)[0].reason, 'logout')
  })

  it('send: delivered once, stamped, with delivered and read receipts back to the sender', async () => {
    const alice = await sdk('alice', 'phone')
    const bob = await sdk('bob', 'phone')
    const got: Message[] = []
    bob.on('message', (m) => got.push(m))
    const receipts: string[] = []
    alice.on('receipt', (r) => receipts.push(`${r.id}:${r.status}`))
    const { id } = await alice.send('bob', { text: 'hi' })
    await alice.send('bob', { text: 'hi' }, { id }) // a retry with the same id
    await eventually(() => receipts.includes(`${id}:delivered`) || undefined)
    assert.equal(got.length, 1)
    assert.equal(got[0]?.from, 'alice')
    await bob.markRead(got[0]!)
    await eventually(() => receipts.includes(`${id}:read`) || undefined)
  })

  it('a refused message rejects with a typed error naming the reason', async () => {
    const alice = await sdk('alice', 'phone', 2000)
    await assert.rejects(alice.send('bob', 'x', { id: 'typed1', type: 't'.repeat(65) }), (err: unknown) => {
      assert.ok(err instanceof RejectedError)
      assert.equal(err.id, 'typed1')
      assert.equal(err.code, 'bad-type')
      return true
    })
  })

  it('after a dropped connection it reconnects, catches up what it missed, and delivers each message once', async () => {
    const alice = await sdk('alice', 'phone')
    const bob = await sdk('bob', 'phone')
    const got: string[] = []
    bob.on('message', (m) => got.push(m.id))
    await alice.send('bob', 'before', { id: 'm0' })
    await eventually(() => got.includes('m0') || undefined)
    const back = once(bob, 'reconnect')
    // the socket goes away without a DISCONNECT; mqtt.js reconnects by itself
    ;(bob as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy()
    for (const id of ['m1', 'm2', 'm3']) await alice.send('bob', id, { id })
    await back
    await eventually(() => (got.length >= 4 ? got : undefined))
    assert.deepEqual([...got].sort(), ['m0', 'm1', 'm2', 'm3'])
  })

  it('two devices of one user stay connected side by side and both receive', async () => {
    const phone = await sdk('carol', 'phone')
    const laptop = await sdk('carol', 'laptop')
    const onPhone = once(phone, 'message')
    const onLaptop = once(laptop, 'message')
    const dave = await sdk('dave', 'phone')
    await dave.send('carol', 'to both')
    assert.equal((await onPhone)[0].body, 'to both')
    assert.equal((await onLaptop)[0].body, 'to both')
    assert.equal(phone.isOnline('carol'), undefined) // not watched
  })
})
