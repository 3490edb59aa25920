/**
 * The built `herald` binary as a child process against a real Herald: watch (--json and the
 * coloured text form), send with its offset, tail, who, and errors that say what to do next.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { HeraldClient } from '../../clients/sdk/index.js'
import { startTestHerald, TEST_SECRET, type TestHerald } from '../harness/herald.js'
import { freePort } from '../harness/ports.js'
import { HERALD_BIN, runHerald } from '../harness/process.js'

/** A long-running CLI command whose stdout lines can be awaited one by one. */
class Running {
  readonly child: ChildProcess
  private readonly lines: string[] = []
  private waiter: (() => void) | undefined
  stderr = ''

  constructor(args: string[], env: Record<string, string>) {
    this.child = spawn(process.execPath, [HERALD_BIN, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.lines.push(line)
      this.waiter?.()
    })
    this.child.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString()
      this.waiter?.()
    })
  }

  /** The next stdout line matching `pred` (earlier ones are consumed). */
  async line(pred: (l: string) => boolean, what: string): Promise<string> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const i = this.lines.findIndex(pred)
      if (i >= 0) return this.lines.splice(0, i + 1).at(-1)!
      if (Date.now() > deadline) throw new Error(`no ${what} line; stderr: ${this.stderr}`)
      await new Promise<void>((resolve) => {
        this.waiter = resolve
        setTimeout(resolve, 250)
      })
    }
  }

  /** Resolves once stderr contains `text`. */
  async stderrHas(text: string): Promise<void> {
    while (!this.stderr.includes(text)) await new Promise<void>((resolve) => (this.waiter = resolve))
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    await exited
  }
}

describe('herald CLI (built binary)', function () {
  this.timeout(30_000)
  let h: TestHerald
  const running: Running[] = []
  const sdks: HeraldClient[] = []
  const env = () => ({
    HERALD_AUTH_SECRET: TEST_SECRET,
    HERALD_MQTT_URL: h.mqttUrl,
    HERALD_HTTP_URL: h.httpUrl,
  })
  const start = (args: string[]) => {
    const r = new Running(args, env())
    running.push(r)
    return r
  }
  const device = async (userId: string, deviceId = 'phone') => {
    const c = await HeraldClient.connect({ url: h.mqttUrl, userId, deviceId, token: await h.token(userId) })
    sdks.push(c)
    return c
  }
  before(async () => {
    h = await startTestHerald()
  })
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop()
    for (const c of sdks.splice(0)) await c.close().catch(() => {})
  })
  after(() => h.close())

  it('watch --json prints one line per edge and status change', async () => {
    const watch = start(['watch', 'wj-alice', '--json', '--as', 'wj-bob'])
    const alice = await device('wj-alice')
    const online = JSON.parse(await watch.line((l) => l.includes('"online"'), 'online')) as Record<
      string,
      unknown
    >
    assert.deepEqual([online.event, online.userId, online.online], ['online', 'wj-alice', true])
    assert.equal(typeof online.ts, 'number')
    await alice.setStatus('away')
    const status = JSON.parse(await watch.line((l) => l.includes('"status"'), 'status')) as Record<
      string,
      unknown
    >
    assert.equal(status.status, 'away')
    await alice.close()
    const offline = JSON.parse(await watch.line((l) => l.includes('"offline"'), 'offline')) as Record<
      string,
      unknown
    >
    assert.equal(offline.reason, 'logout')
  })

  it('watch without --json: a timestamped line per change, no colour codes when not a terminal', async () => {
    const watch = start(['watch', 'wt-alice', '--as', 'wt-bob'])
    await watch.stderrHas('watching wt-alice')
    const alice = await device('wt-alice')
    const line = await watch.line((l) => l.includes('wt-alice'), 'online')
    assert.match(line, /^\d\d:\d\d:\d\d\.\d{3} {2}● online {3}wt-alice {2}since \d\d:\d\d:\d\d\.\d{3}$/)
    await alice.close()
    assert.match(
      await watch.line((l) => l.includes('offline'), 'offline'),
      /● offline {2}wt-alice {2}logout, last seen just now/,
    )
  })

  it('send prints the id and offset; tail shows the message; a re-send is de-duplicated', async () => {
    const tail = start(['tail', '--as', 'st-bob', '--device', 'terminal', '--json'])
    await tail.stderrHas('tailing messages to st-bob')
    const sent = await runHerald(
      ['send', 'st-bob', 'hello from the CLI', '--as', 'st-alice', '--id', 'cli-1', '--json'],
      env(),
    )
    assert.equal(sent.code, 0, sent.stderr)
    const result = JSON.parse(sent.stdout) as { id: string; to: string; offset: string }
    assert.equal(result.id, 'cli-1')
    assert.match(result.offset, /^\d+-\d+$/)
    const got = JSON.parse(await tail.line((l) => l.includes('cli-1'), 'message')) as Record<string, unknown>
    assert.deepEqual(
      [got.kind, got.from, got.offset, (got.body as { text: string }).text],
      ['message', 'st-alice', result.offset, 'hello from the CLI'],
    )
    const text = await runHerald(['send', 'st-bob', 'again', '--as', 'st-alice', '--id', 'cli-1'], env())
    assert.equal(text.stdout.trim(), `sent cli-1 to st-bob at offset ${result.offset}`) // de-duplicated
  })

  it('who shows devices; errors say what to do next', async () => {
    await device('wh-carol', 'phone')
    await device('wh-carol', 'laptop')
    const who = await runHerald(['who', 'wh-carol'], env())
    assert.equal(who.code, 0, who.stderr)
    assert.match(who.stdout, /^wh-carol: online since/)
    assert.match(who.stdout, /wh-carol\/phone/)
    assert.match(who.stdout, /wh-carol\/laptop/)

    const port = await freePort()
    const refused = await runHerald(['send', 'x', 'hi', '--url', `mqtt://127.0.0.1:${port}`], env())
    assert.equal(refused.code, 1)
    assert.match(
      refused.stderr,
      new RegExp(`is Herald running on 127.0.0.1:${port}\\? Start it with \`npm start\``),
    )

    const httpRefused = await runHerald(['who', 'x', '--http', `http://127.0.0.1:${port}`], env())
    assert.match(httpRefused.stderr, /connection refused — is Herald running/)

    const badToken = await runHerald(['send', 'x', 'hi', '--token', 'not-a-jwt'], env())
    assert.equal(badToken.code, 1)
    assert.match(
      badToken.stderr,
      /CONNACK 4: bad or expired\) — mint a new one with `herald token herald-cli`/,
    )

    const wrongUser = await runHerald(
      ['send', 'x', 'hi', '--as', 'mallory', '--token', await h.token('carol')],
      env(),
    )
    assert.match(wrongUser.stderr, /CONNACK [45]/)

    const noSecret = await runHerald(['token', 'alice', '--data-dir', '/nonexistent-herald-dir'], {})
    assert.match(noSecret.stderr, /start Herald once \(npm start\)/)

    const badTtl = await runHerald(['token', 'alice', '--ttl', 'soon'], env())
    assert.equal(badTtl.code, 1)
    assert.equal(badTtl.stderr, 'herald: --ttl must be a time span (30m, 1h, 7d) or seconds: "soon"\n')
  })
})
