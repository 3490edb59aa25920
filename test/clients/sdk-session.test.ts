/**
 * SDK sessions against Herald as its own process (its writes reach the socket as a real
 * server's do): a device app started again gets what its persistent session held.
 */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ConnectOptions, HeraldClient, type HeraldError } from '../../clients/sdk/index.js'
import { mintToken } from '../../services/core/auth.js'
import { TEST_SECRET } from '../harness/herald.js'
import { freePort } from '../harness/ports.js'
import { type HeraldProcess, spawnHerald, testDataDir } from '../harness/process.js'
import { eventually } from '../harness/wait.js'

describe('SDK sessions (clients/sdk, Herald as a process)', function () {
  this.timeout(30_000)
  let proc: HeraldProcess
  const open: HeraldClient[] = []
  before(async () => {
    proc = await spawnHerald('start')
  })
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close().catch(() => {})
  })
  after(() => proc?.kill('SIGTERM'))

  async function connect(userId: string, opts: Partial<ConnectOptions> = {}): Promise<HeraldClient> {
    const c = await HeraldClient.connect({
      url: proc.mqttUrl,
      httpUrl: proc.httpUrl,
      userId,
      token: await mintToken(TEST_SECRET, userId),
      deviceIdDir: await mkdtemp(join(tmpdir(), 'herald-sdk-')),
      ...opts,
    })
    open.push(c)
    return c
  }

  it('a device app started again gets every message its session held, also those right behind the CONNACK', async () => {
    // Aedes writes the session's queue right behind the CONNACK, often in the same TCP segment:
    // mqtt.js handles those PUBLISHes before connect() resumes. They were acknowledged unseen,
    // and no catch-up finds them (they are older than the new client).
    const sender = await connect('carol')
    const lost: string[] = []
    for (let round = 0; round < 20; round++) {
      const to = `alice${round}`
      await (await connect(to, { deviceId: 'phone' })).close()
      const ids: string[] = []
      for (let i = 0; i < 3; i++) ids.push((await sender.send(to, { i }, { id: `q${round}-${i}` })).id)
      const device = await connect(to, { deviceId: 'phone' })
      const got: string[] = []
      device.on('message', (m) => got.push(m.id))
      await eventually(() => got.length >= ids.length, { timeoutMs: 2000 }).catch(() => {})
      lost.push(...ids.filter((id) => !got.includes(id)))
      assert.equal(got.length, new Set(got).size)
      await device.close()
    }
    assert.deepEqual(lost, [])
  })

  it('close() while the connection is down ends at once, and a send still waiting fails instead of waiting for good', async () => {
    const down = await spawnHerald('start')
    const c = await HeraldClient.connect({
      url: down.mqttUrl,
      userId: 'closer',
      token: await mintToken(TEST_SECRET, 'closer'),
      deviceIdDir: await mkdtemp(join(tmpdir(), 'herald-sdk-')),
      reconnectMinMs: 50,
      reconnectMaxMs: 200,
    })
    await down.kill('SIGKILL')
    await eventually(() => !c.connected)
    const waiting = c.send('someone', 'while down', { id: 'wd-1' })
    const outcome = waiting.then(
      () => 'resolved',
      (err: HeraldError) => err.code,
    )
    const closed = await Promise.race([
      c.close().then(() => 'closed'),
      new Promise((r) => setTimeout(() => r('still closing after 3 s'), 3000)),
    ])
    assert.equal(closed, 'closed')
    assert.equal(await outcome, 'closed')
  })

  it('after a restart of a memory-mode Herald, a watched user who did not come back is offline, not online for good', async () => {
    // presence is not journaled: the restarted Herald has no document for dave, so the
    // re-subscribe brings none and the SDK kept the online heard before the restart
    const ports = { mqtt: await freePort(), ws: await freePort(), http: await freePort() }
    const env = {
      HERALD_DATA_DIR: testDataDir(),
      HERALD_MQTT_PORT: String(ports.mqtt),
      HERALD_WS_PORT: String(ports.ws),
      HERALD_HTTP_PORT: String(ports.http),
    }
    let restarted = await spawnHerald('start', env)
    try {
      const opts = {
        url: restarted.mqttUrl,
        httpUrl: restarted.httpUrl,
        reconnectMinMs: 50,
        reconnectMaxMs: 200,
      }
      const alice = await connect('alice-r', opts)
      const dave = await connect('dave-r', opts)
      await alice.watch(['dave-r'])
      await eventually(() => alice.isOnline('dave-r') === true)
      const offline = new Promise<void>((resolve) =>
        alice.on('offline', (doc) => doc.userId === 'dave-r' && resolve()),
      )
      await restarted.kill('SIGKILL')
      await dave.close() // dave's device is gone for good
      // on the same ports: a reconnecting client's socket may hold one of them for a moment
      restarted = await eventually(() =>
        spawnHerald('start', env).catch((err: Error) => {
          if (/EADDRINUSE/.test(err.message)) return undefined
          throw err
        }),
      )
      await eventually(() => alice.connected && alice.listenerCount('offline') > 0)
      await Promise.race([offline, new Promise((r) => setTimeout(r, 5000))])
      assert.equal(alice.isOnline('dave-r'), false)
    } finally {
      await restarted.kill('SIGTERM')
    }
  })
})
