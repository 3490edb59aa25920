/**
 * The web page in a real browser (Debian's chromium through playwright-core): two users see
 * each other online, chat with delivered and read ticks, two tabs of one user live side by
 * side, and last-seen shows once a user leaves.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { type Browser, chromium, type Page } from 'playwright-core'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { ensureInstalled } from '../harness/system.js'
import { eventually } from '../harness/wait.js'

const CHROMIUM = process.env.HERALD_CHROMIUM ?? '/usr/bin/chromium'
/** Screenshots of each step, kept as CI artifacts (git-ignored). */
const ARTIFACTS = 'test-artifacts/web'
/** The SDK's default MQTT keepalive, s: a closed tab must show offline within keepalive x 1.5 + 1 s. */
const KEEPALIVE_S = 30

describe('web page (chromium)', function () {
  this.timeout(60_000)
  let h: TestHerald
  let browser: Browser

  before(async function () {
    this.timeout(600_000) // apt-get install chromium when it is missing
    if (!process.env.HERALD_CHROMIUM) ensureInstalled('chromium', 'chromium')
    h = await startTestHerald()
    await mkdir(ARTIFACTS, { recursive: true })
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
    })
  })
  after(async () => {
    await browser?.close()
    await h?.close()
  })

  async function signIn(page: Page, userId: string, roster: string[]): Promise<void> {
    await page.goto(`${h.httpUrl}/`)
    await page.fill('#user', userId)
    await page.fill('#token', await h.token(userId))
    await page.click('#signin-button')
    await page.waitForSelector('#app:not(.hidden)')
    for (const u of roster) {
      await page.fill('#add-user', u)
      await page.press('#add-user', 'Enter')
      await page.waitForSelector(`#roster li[data-user="${u}"]`)
    }
  }

  it('two users see each other online, chat, and get delivered and read ticks; two tabs of one user coexist', async () => {
    const alice = await (await browser.newContext()).newPage()
    const bob = await (await browser.newContext()).newPage()
    await signIn(alice, 'alice', ['bob'])
    await signIn(bob, 'bob', ['alice'])
    await alice.waitForSelector('#roster li[data-user="bob"] .dot.online')
    await bob.waitForSelector('#roster li[data-user="alice"] .dot.online')
    assert.match((await alice.textContent('#online-count')) ?? '', /^1 of 1 online/)

    await alice.click('#roster li[data-user="bob"]')
    await alice.fill('#text', 'hello bob')
    await alice.click('#send')
    await alice.waitForSelector('.msg.mine .ticks[data-ticks="delivered"]')
    await bob.click('#roster li[data-user="alice"]')
    await bob.waitForSelector('.msg:has-text("hello bob")')
    await alice.waitForSelector('.msg.mine .ticks[data-ticks="read"]')
    await alice.screenshot({ path: `${ARTIFACTS}/1-alice-read-ticks.png` })
    await bob.screenshot({ path: `${ARTIFACTS}/1-bob-chat.png` })

    // alice steps away: bob's dot turns amber
    await alice.selectOption('#my-status', 'away')
    await bob.waitForSelector('#roster li[data-user="alice"] .dot.away')
    await alice.selectOption('#my-status', 'available')
    await bob.waitForSelector('#roster li[data-user="alice"] .dot.online')

    // a second tab of alice: its own deviceId, both stay connected and both receive
    // window.open copies sessionStorage (as "duplicate tab" does): the copy signs in by itself
    // and must not reuse the first tab's deviceId
    const [aliceTab2] = await Promise.all([
      alice.context().waitForEvent('page'),
      alice.evaluate('void window.open(location.href)'),
    ])
    await aliceTab2.waitForSelector('#app:not(.hidden)')
    const [who1, who2] = [await alice.textContent('#whoami'), await aliceTab2.textContent('#whoami')]
    assert.match(who2 ?? '', /^alice · web-/)
    assert.notEqual(who1, who2)
    const svc = await h.token('ops', { role: 'service' })
    await eventually(async () => {
      const view = (await http(h.httpUrl, '/v1/presence/alice', { token: svc })).body as {
        connections: number
      }
      return view.connections === 2 || undefined
    })
    await bob.waitForSelector('#roster li[data-user="alice"] .meta:has-text("2 devices")')
    await bob.fill('#text', 'to both tabs')
    await bob.click('#send')
    await alice.waitForSelector('.msg:has-text("to both tabs")') // its chat with bob is open
    // the other tab adds bob to its roster when his message arrives; opening the chat shows it
    await aliceTab2.click('#roster li[data-user="bob"]')
    await aliceTab2.waitForSelector('.msg:has-text("to both tabs")')

    await bob.screenshot({ path: `${ARTIFACTS}/2-bob-sees-two-devices.png` })

    // alice closes her tabs: bob sees her offline, with a last-seen, in time
    const closedAt = Date.now()
    await alice.context().close()
    await bob.waitForSelector('#roster li[data-user="alice"] .dot.offline', {
      timeout: (KEEPALIVE_S * 1.5 + 1) * 1000,
    })
    assert.ok(Date.now() - closedAt < (KEEPALIVE_S * 1.5 + 1) * 1000)
    await bob.screenshot({ path: `${ARTIFACTS}/3-bob-sees-alice-offline.png` })
    assert.match((await bob.textContent('#roster li[data-user="alice"] .meta')) ?? '', /seen just now/)
  })
})
