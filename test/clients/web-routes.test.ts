/** The web page's routes: the bundle at `/`, its config, and the development sign-in helper's rules. */
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HeraldClient } from '../../clients/sdk/index.js'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'

describe('web page routes', () => {
  const started: TestHerald[] = []
  afterEach(async () => {
    for (const h of started.splice(0)) await h.close()
  })

  it('with a configured secret: the page and its bundle are served, the token helper is off', async () => {
    const h = await startTestHerald()
    started.push(h)
    const page = await fetch(`${h.httpUrl}/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-type') ?? '', /text\/html/)
    assert.match(await page.text(), /<script type="module" src="\/app.js">/)
    const bundle = await fetch(`${h.httpUrl}/app.js`)
    assert.equal(bundle.status, 200)
    assert.ok((await bundle.text()).length > 10_000)
    const config = (await http(h.httpUrl, '/web/config')).body as { wsPort: number; devSignIn: boolean }
    assert.equal(config.wsPort, Number(new URL(h.wsUrl).port))
    assert.equal(config.devSignIn, false)
    const refused = await http(h.httpUrl, '/web/dev-token', { body: { userId: 'alice' } })
    assert.equal(refused.status, 403)
  })

  it('with the generated development secret: the helper mints a token that connects', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'herald-web-'))
    const h = await startTestHerald({ authSecret: undefined, dataDir })
    started.push(h)
    assert.equal(((await http(h.httpUrl, '/web/config')).body as { devSignIn: boolean }).devSignIn, true)
    assert.equal((await http(h.httpUrl, '/web/dev-token', { body: { userId: 'a/b' } })).status, 400)
    const { token } = (await http(h.httpUrl, '/web/dev-token', { body: { userId: 'alice' } })).body as {
      token: string
    }
    const alice = await HeraldClient.connect({ url: h.wsUrl, userId: 'alice', deviceId: 'tab1', token })
    assert.ok(alice.connected)
    await alice.close()
  })
})
