/**
 * Conformance mode (`--insecure-anonymous`): plain MQTT 3.1.1 for outside test suites — no
 * tokens, any clientId and topic but the deny list, Aedes's own wills and retained messages —
 * and only on a loopback bind. docs/security.md says how to run the Paho suite against it.
 */
import assert from 'node:assert/strict'
import mqtt, { type MqttClient } from 'mqtt'
import { ConfigError, loadConfig } from '../../services/core/config.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { dropSocket } from '../harness/mqtt.js'

describe('conformance mode (--insecure-anonymous)', function () {
  this.timeout(30_000)
  let h: TestHerald
  const clients: MqttClient[] = []
  const anon = async (clientId: string, opts: mqtt.IClientOptions = {}) => {
    const c = await mqtt.connectAsync(h.mqttUrl, {
      clientId,
      protocolVersion: 4,
      reconnectPeriod: 0,
      ...opts,
    })
    clients.push(c)
    return c
  }
  before(async () => {
    h = await startTestHerald({ insecureAnonymous: true })
  })
  after(async () => {
    for (const c of clients) c.end(true)
    await h?.close()
  })

  it('refuses to start on a non-loopback bind', () => {
    assert.throws(
      () => loadConfig({ env: { HERALD_INSECURE_ANONYMOUS: 'true', HERALD_HOST: '0.0.0.0' } }),
      (err: unknown) => err instanceof ConfigError && err.setting === 'HERALD_INSECURE_ANONYMOUS',
    )
    assert.equal(loadConfig({ env: { HERALD_INSECURE_ANONYMOUS: 'true' } }).insecureAnonymous, true)
  })

  it('any clientId without a token; retained messages and wills work; the deny list is refused', async () => {
    const a = await anon('myclientid')
    await a.publishAsync('TopicA/B', 'kept', { qos: 1, retain: true })
    const b = await anon('myclientid2')
    const got = new Promise<string>((resolve) => b.once('message', (_t, p) => resolve(p.toString())))
    const grants = await b.subscribeAsync(['TopicA/#', 'test/nosubscribe'], { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (err: { packet?: { granted: number[] } }) => err.packet?.granted ?? [],
    )
    assert.deepEqual(grants, [1, 128])
    assert.equal(await got, 'kept')
    await h.logs.waitFor((l) => l.msg === 'subscribe refused: deny list')

    const will = new Promise<string>((resolve) =>
      b.on('message', (t, p) => {
        if (t === 'TopicA/will') resolve(p.toString())
      }),
    )
    const dying = await anon('dying', {
      will: { topic: 'TopicA/will', payload: Buffer.from('gone'), qos: 1, retain: false },
    })
    dropSocket(dying)
    assert.equal(await will, 'gone')
  })
})
