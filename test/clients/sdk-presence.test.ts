/**
 * SDK presence and connections against a real Herald: watch edges (and no per-device flapping),
 * presence re-read after a reconnect, query(), stable deviceIds, typed connection errors.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConnectError, HeraldClient, type PresenceDoc } from '../../clients/sdk/index.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { cutSocket, SdkPool } from './sdk-helpers.js'

describe('SDK presence (clients/sdk)', function () {
  this.timeout(20_000)
  let h: TestHerald
  const pool = new SdkPool(() => h)
  before(async () => {
    h = await startTestHerald()
  })
  afterEach(() => pool.closeAll())
  after(() => h.close())

  it('watch reports user-level edges, not a second device coming and going', async () => {
    const [c, d] = [pool.user('carol'), pool.user('dave')]
    const carol = await pool.connect(c)
    const events: string[] = []
    for (const kind of ['online', 'offline', 'status'] as const)
      carol.on(kind, (doc: PresenceDoc) => events.push(`${kind}:${doc.status ?? ''}`))
    const online = once(carol, 'online')
    await carol.watch([d])
    const phone = await pool.connect(d, { deviceId: 'phone' })
    await online
    const laptop = await pool.connect(d, { deviceId: 'laptop' })
    await laptop.close()
    // the status change comes after the laptop's edges in dave's ordered event stream
    const status = once(carol, 'status')
    await phone.setStatus('away', { note: 'lunch' })
    assert.equal(((await status) as [PresenceDoc])[0].meta?.note, 'lunch')
    const offline = once(carol, 'offline')
    await phone.close()
    assert.equal(((await offline) as [PresenceDoc])[0].reason, 'logout')
    assert.deepEqual(events, ['online:', 'status:away', 'offline:'])
    assert.equal(carol.isOnline(d), false)
  })

  it('presence survives a reconnect: what changed meanwhile is reported once back', async () => {
    const [c, d] = [pool.user('carol'), pool.user('dave')]
    const dave = await pool.connect(d)
    const carol = await pool.connect(c)
    const online = once(carol, 'online')
    await carol.watch([d])
    await online
    const down = once(carol, 'disconnect')
    cutSocket(carol)
    await down
    await dave.close() // while carol is away: the offline edge is published to nobody
    const offline = once(carol, 'offline')
    assert.equal(((await offline) as [PresenceDoc])[0].userId, d)
  })

  it('query() answers presence with connections and devices', async () => {
    const [c, d] = [pool.user('carol'), pool.user('dave')]
    await pool.connect(d, { deviceId: 'phone' })
    await pool.connect(d, { deviceId: 'laptop' })
    const carol = await pool.connect(c)
    const result = await carol.query([d, 'nobody-here'])
    assert.equal(result[d]?.online, true)
    assert.equal(result[d]?.connections, 2)
    assert.deepEqual([...(result[d]?.devices ?? [])].sort(), ['laptop', 'phone'])
    assert.equal(result['nobody-here']?.online, false)
  })

  it('a generated deviceId is stable per device folder; two folders are two devices that do not take each other over', async () => {
    const e = pool.user('erin')
    const dirA = await mkdtemp(join(tmpdir(), 'herald-dev-a-'))
    const dirB = await mkdtemp(join(tmpdir(), 'herald-dev-b-'))
    const a1 = await pool.connect(e, { deviceIdDir: dirA })
    const deviceA = a1.deviceId
    await a1.close()
    const a2 = await pool.connect(e, { deviceIdDir: dirA })
    assert.equal(a2.deviceId, deviceA)
    const b = await pool.connect(e, { deviceIdDir: dirB })
    assert.notEqual(b.deviceId, deviceA)
    let dropped = 0
    for (const c of [a2, b]) c.on('disconnect', () => dropped++)
    const watcher = await pool.connect(pool.user('frank'))
    const onA = once(a2, 'message')
    const onB = once(b, 'message')
    await watcher.send(e, 'to both devices')
    await Promise.all([onA, onB])
    const view = (await watcher.query([e]))[e]
    assert.equal(view?.connections, 2)
    assert.equal(dropped, 0)
    assert.ok(a2.connected && b.connected)
  })

  it('connect rejects with a typed ConnectError: bad token (CONNACK 4), nobody listening', async () => {
    await assert.rejects(
      HeraldClient.connect({ url: h.mqttUrl, userId: 'gina', deviceId: 'd1', token: 'not-a-jwt' }),
      (err: unknown) => {
        assert.ok(err instanceof ConnectError)
        assert.deepEqual([err.code, err.returnCode], ['bad-token', 4])
        return true
      },
    )
    await assert.rejects(
      HeraldClient.connect({
        url: h.mqttUrl,
        userId: 'gina',
        deviceId: 'd1',
        token: await h.token('someone-else'),
      }),
      (err: unknown) => err instanceof ConnectError && err.returnCode !== undefined,
    )
    await assert.rejects(
      HeraldClient.connect({ url: 'mqtt://127.0.0.1:1', userId: 'gina', deviceId: 'd1', token: 'x' }),
      (err: unknown) => err instanceof ConnectError && err.code === 'unreachable',
    )
  })
})
