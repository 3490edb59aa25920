/**
 * SDK messaging against a real Herald: offsets from send(), typed refusals, de-duplication of
 * redeliveries, send retries that keep their id, catch-up by offset on a reconnect and on a new
 * device.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { type Message, RejectedError } from '../../clients/sdk/index.js'
import { visibleTo } from '../../services/messaging/store.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { eventually } from '../harness/wait.js'
import { cutAndWaitBack, cutSocket, SdkPool } from './sdk-helpers.js'

describe('SDK messaging (clients/sdk)', function () {
  this.timeout(20_000)
  let h: TestHerald
  const pool = new SdkPool(() => h)
  before(async () => {
    h = await startTestHerald()
  })
  afterEach(() => pool.closeAll())
  after(() => h.close())

  it('send resolves with the id and the offset the recipient sees', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const bob = await pool.connect(b)
    const got = once(bob, 'message')
    const sent = await alice.send(b, { text: 'hi' }, { type: 'chat' })
    assert.equal(sent.to, b)
    assert.match(sent.offset ?? '', /^\d+-\d+$/)
    const [m] = (await got) as [Message]
    assert.deepEqual(
      { id: m.id, from: m.from, to: m.to, type: m.type, offset: m.offset },
      { id: sent.id, from: a, to: b, type: 'chat', offset: sent.offset },
    )
  })

  it('one id sent to two users: each send resolves with its own offset, and a repeat to the first too', async () => {
    const [a, b, c] = [pool.user('alice'), pool.user('bob'), pool.user('carol')]
    const alice = await pool.connect(a)
    const toBob = await alice.send(b, 'hi', { id: 'same-1' })
    const toCarol = await alice.send(c, 'hi', { id: 'same-1' })
    assert.notEqual(toCarol.offset, undefined)
    // Herald answers a repeat to bob with bob's offset, although carol was recorded since
    assert.deepEqual(await alice.send(b, 'hi', { id: 'same-1' }), toBob)
    assert.match(toBob.offset ?? '', /^\d+-\d+$/)
  })

  it('a refusal rejects send with RejectedError: named ids and refusals that cannot name one', async () => {
    const alice = await pool.connect(pool.user('alice'))
    const to = pool.user('bob')
    await assert.rejects(alice.send(to, 'x', { id: 'typed-1', type: 't'.repeat(65) }), (err: unknown) => {
      assert.ok(err instanceof RejectedError)
      assert.deepEqual([err.id, err.code], ['typed-1', 'bad-type'])
      return true
    })
    // over HERALD_MAX_MESSAGE_BYTES: Herald cannot read the id, the receipt names none
    await assert.rejects(alice.send(to, 'y'.repeat(70_000), { id: 'big-1' }), (err: unknown) => {
      assert.ok(err instanceof RejectedError)
      assert.deepEqual([err.id, err.code], ['big-1', 'too-large'])
      return true
    })
    // the connection stays usable
    assert.match((await alice.send(to, 'fine')).offset ?? '', /^\d+-\d+$/)
  })

  it('without httpUrl, a refusal that cannot name its message rejects the one send in flight', async () => {
    const alice = await pool.connect(pool.user('alice'), { httpUrl: undefined })
    await assert.rejects(
      alice.send(pool.user('bob'), 'y'.repeat(70_000), { id: 'big-2' }),
      (err: unknown) => {
        assert.ok(err instanceof RejectedError)
        assert.deepEqual([err.id, err.code], ['big-2', 'too-large'])
        return true
      },
    )
  })

  it('a message over the packet limit is refused by send() itself, and the connection stays usable', async () => {
    const alice = await pool.connect(pool.user('alice'))
    const to = pool.user('bob')
    const disconnects: number[] = []
    alice.on('disconnect', () => disconnects.push(Date.now()))
    await assert.rejects(alice.send(to, 'z'.repeat(300_000), { id: 'huge-1' }), (err: unknown) => {
      assert.ok(err instanceof RejectedError)
      assert.deepEqual([err.id, err.code], ['huge-1', 'too-large'])
      return true
    })
    const next = await Promise.race([
      alice.send(to, 'small', { id: 'small-1' }),
      new Promise((r) => setTimeout(() => r('still waiting'), 3000)),
    ])
    assert.deepEqual((next as { id?: string }).id, 'small-1')
    assert.deepEqual(disconnects, [])
  })

  it('each message reaches the application once, although the catch-up after a reconnect delivers it again', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const bob = await pool.connect(b)
    const got: string[] = []
    bob.on('message', (m) => got.push(m.id))
    const first = once(bob, 'message')
    await alice.send(b, 'once', { id: 'once-1' })
    await first
    // the catch-up starts 10 s before the last offset seen, so once-1 comes back from the history
    const page = await bob.history({ after: '0' })
    assert.deepEqual(
      page.messages.map((m) => m.id),
      ['once-1'],
    )
    await cutAndWaitBack(bob) // 'reconnect' fires after the catch-up
    await alice.send(b, 'twice', { id: 'once-2' })
    await eventually(() => got.includes('once-2') || undefined)
    assert.deepEqual(got, ['once-1', 'once-2'])
  })

  it('a send while the connection is down waits, goes out after the reconnect under the same id, and arrives once', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const bob = await pool.connect(b)
    const got: Message[] = []
    bob.on('message', (m) => got.push(m))
    const down = once(alice, 'disconnect')
    cutSocket(alice)
    await down
    assert.equal(alice.connected, false)
    const sent = await alice.send(b, 'queued', { id: 'retry-1' })
    assert.equal(sent.id, 'retry-1')
    assert.match(sent.offset ?? '', /^\d+-\d+$/)
    // an application-level retry of the same id is recorded once, at the same offset
    assert.equal((await alice.send(b, 'queued', { id: 'retry-1' })).offset, sent.offset)
    await eventually(() => got.length >= 1 || undefined)
    await alice.send(b, 'after', { id: 'retry-2' })
    await eventually(() => got.some((m) => m.id === 'retry-2') || undefined)
    assert.deepEqual(
      got.map((m) => m.id),
      ['retry-1', 'retry-2'],
    )
  })

  it('after a dropped connection it catches up what arrived meanwhile, then sends delivered receipts', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const bob = await pool.connect(b)
    const got: string[] = []
    bob.on('message', (m) => got.push(m.id))
    const delivered = new Set<string>()
    alice.on('receipt', (r) => r.status === 'delivered' && delivered.add(r.id))
    const down = once(bob, 'disconnect')
    const back = once(bob, 'reconnect')
    cutSocket(bob)
    await down
    for (const id of ['gap-1', 'gap-2', 'gap-3']) await alice.send(b, id, { id })
    await back
    await eventually(() => (delivered.size === 3 ? delivered : undefined))
    assert.deepEqual([...got].sort(), ['gap-1', 'gap-2', 'gap-3'])
  })

  it('a new device of the user catches up by offset from where another left off', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const phone = await pool.connect(b, { deviceId: 'phone' })
    const first = once(phone, 'message')
    await alice.send(b, 'seen on the phone', { id: 'off-1' })
    await first
    const offset = phone.lastOffset
    assert.ok(offset)
    await alice.send(b, 'missed', { id: 'off-2' })
    await alice.send(b, 'missed too', { id: 'off-3' })
    const tablet = await pool.connect(b, { deviceId: 'tablet', catchUpAfter: offset })
    const got: string[] = []
    tablet.on('message', (m) => got.push(m.id)) // held messages reach the first listener
    await eventually(() => (got.length >= 2 ? got : undefined))
    assert.deepEqual(got, ['off-2', 'off-3'])
  })

  it("catch-up reads on past an empty page whose next moved forward (a page of another device's messages)", async () => {
    const b = pool.user('bob')
    const service = await h.token('backend', { role: 'service' })
    const post = async (body: object) => {
      const res = await http(h.httpUrl, `/v1/users/${b}/messages`, { token: service, body })
      assert.equal(res.status, 202)
    }
    for (let i = 0; i < 5; i++) await post({ id: `tab-${i}`, deviceId: 'tablet', body: i })
    await post({ id: 'for-every-device', body: 'important' })
    // a store that reads two entries per request and filters them after the read, as the
    // Redis store did: the phone's first pages are empty, each with a next further on
    const store = h.herald.backend.messages
    const history = store.history
    store.history = async (userId, opts) => {
      const page = await history.call(store, userId, { after: opts.after, limit: 2 })
      return { messages: page.messages.filter((m) => visibleTo(m, opts.deviceId)), next: page.next }
    }
    try {
      const phone = await pool.connect(b, { deviceId: 'phone', catchUpAfter: '0', catchUpEveryMs: 0 })
      const got: string[] = []
      phone.on('message', (m) => got.push(m.id)) // connect() resolved after the catch-up
      await eventually(() => (got.length > 0 ? got : undefined), { what: 'the caught-up message' })
      assert.deepEqual(got, ['for-every-device'])
    } finally {
      store.history = history
    }
  })

  it('markRead sends a read receipt the sender sees with the reading device', async () => {
    const [a, b] = [pool.user('alice'), pool.user('bob')]
    const alice = await pool.connect(a)
    const bob = await pool.connect(b, { deviceId: 'desk' })
    const got = once(bob, 'message')
    const { id } = await alice.send(b, 'read me')
    const read = new Promise<void>((resolve) =>
      alice.on('receipt', (r) => {
        if (r.id === id && r.status === 'read') {
          assert.equal(r.by, b)
          assert.equal(r.deviceId, 'desk')
          resolve()
        }
      }),
    )
    await bob.markRead(((await got) as [Message])[0])
    await read
  })
})
