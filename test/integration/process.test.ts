/**
 * Herald as a newcomer runs it: the built `herald` binary as a child process, a client nobody
 * here wrote (mosquitto_sub), kills by PID.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mintToken } from '../../services/core/auth.js'
import { Redis } from '../../services/core/redis.js'
import type { PresenceView } from '../../services/presence/types.js'
import { TEST_SECRET } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { type HeraldProcess, runHerald, spawnHerald } from '../harness/process.js'
import { RedisServer } from '../harness/redis.js'
import { ensureInstalled } from '../harness/system.js'
import { eventually } from '../harness/wait.js'

describe('the herald binary', function () {
  this.timeout(30_000)
  let herald: HeraldProcess | undefined
  const children: ChildProcess[] = []

  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL')
    await herald?.kill('SIGKILL')
    herald = undefined
  })

  const presence = async (userId: string) => {
    const token = await mintToken(TEST_SECRET, 'ops', { role: 'service' })
    const res = await http(herald!.httpUrl, `/v1/presence/${userId}`, { token })
    return res.body as PresenceView
  }

  it('refuses to start on an invalid setting, naming it', async () => {
    const bad = await runHerald(['start'], { HERALD_MQTT_PORT: 'eighteen' })
    assert.equal(bad.code, 2)
    assert.match(bad.stderr, /HERALD_MQTT_PORT/)
    const flag = await runHerald(['start', '--node-heartbeat-ms', '-5'])
    assert.equal(flag.code, 2)
    assert.match(flag.stderr, /--node-heartbeat-ms/)
    const node = await runHerald(['node'], {
      HERALD_REDIS_URL: 'redis://127.0.0.1:1',
      HERALD_AUTH_SECRET: TEST_SECRET,
    })
    assert.equal(node.code, 2)
    assert.match(node.stderr, /HERALD_NODE_ID/)
    // the all-in-one process runs an access node too: in Redis mode its id is required as well
    const start = await runHerald(['start'], {
      HERALD_REDIS_URL: 'redis://127.0.0.1:1',
      HERALD_AUTH_SECRET: TEST_SECRET,
    })
    assert.equal(start.code, 2)
    assert.match(start.stderr, /HERALD_NODE_ID/)
  })

  it('refuses an invalid secret or Redis URL without writing the credential to stderr', async () => {
    const secret = await runHerald(['start'], { HERALD_AUTH_SECRET: 'short-s3cret' })
    assert.equal(secret.code, 2)
    assert.match(secret.stderr, /HERALD_AUTH_SECRET/)
    assert.doesNotMatch(secret.stderr + secret.stdout, /short-s3cret/)
    for (const url of ['http://:pa55word@127.0.0.1:6379', 'redis//admin:pa55word@127.0.0.1']) {
      const redis = await runHerald(['start'], { HERALD_REDIS_URL: url, HERALD_AUTH_SECRET: TEST_SECRET })
      assert.equal(redis.code, 2)
      assert.match(redis.stderr, /HERALD_REDIS_URL/)
      assert.doesNotMatch(redis.stderr + redis.stdout, /pa55word/)
    }
    const flag = await runHerald(['start', '--auth-secret', 'short-s3cret'])
    assert.match(flag.stderr, /--auth-secret/)
    assert.doesNotMatch(flag.stderr + flag.stdout, /short-s3cret/)
  })

  it('a public key file that is missing or holds no key stops the start with a message naming HERALD_AUTH_PUBLIC_KEY', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-keys-'))
    try {
      writeFileSync(join(dir, 'garbage.pem'), 'not a key\n')
      for (const file of [join(dir, 'missing.pem'), join(dir, 'garbage.pem')]) {
        const res = await runHerald(['start'], {
          HERALD_AUTH_PUBLIC_KEY: file,
          HERALD_DATA_DIR: dir,
          HERALD_MQTT_PORT: 'auto',
          HERALD_WS_PORT: 'auto',
          HERALD_HTTP_PORT: 'auto',
        })
        assert.equal(res.code, 1)
        assert.match(res.stderr, /HERALD_AUTH_PUBLIC_KEY/)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('a Redis password refused by Redis is not written to the log', async () => {
    const redis = await RedisServer.start()
    try {
      const admin = new Redis(redis.url)
      await admin.config('SET', 'requirepass', 'the-right-pa55')
      admin.disconnect()
      const res = await runHerald(['start'], {
        HERALD_REDIS_URL: `redis://:a-wrong-pa55@127.0.0.1:${redis.port}`,
        HERALD_NODE_ID: 'n1',
        HERALD_AUTH_SECRET: TEST_SECRET,
        HERALD_MQTT_PORT: 'auto',
        HERALD_WS_PORT: 'auto',
        HERALD_HTTP_PORT: 'auto',
      })
      assert.equal(res.code, 1)
      assert.match(res.stdout, /WRONGPASS/) // the reason is logged ...
      assert.doesNotMatch(res.stdout + res.stderr, /a-wrong-pa55/) // ... the password is not
    } finally {
      await redis.destroy()
    }
  })

  it('mosquitto_sub with a token from `herald token` is online at once; SIGKILL of it is offline with connection-lost', async () => {
    ensureInstalled('mosquitto_sub', 'mosquitto-clients')
    herald = await spawnHerald('start')
    const minted = await runHerald(['token', 'alice'], { HERALD_AUTH_SECRET: TEST_SECRET })
    assert.equal(minted.code, 0, minted.stderr)
    const token = minted.stdout.trim()
    const sub = spawn(
      'mosquitto_sub',
      [
        '-h',
        '127.0.0.1',
        '-p',
        String(herald.ports.mqtt),
        '-i',
        'alice/phone',
        '-u',
        'alice',
        '-P',
        token,
        '-t',
        'users/alice/inbox',
        '-q',
        '1',
      ],
      { stdio: 'ignore' },
    )
    children.push(sub)
    const online = await eventually(
      async () => {
        const v = await presence('alice')
        return v.online ? v : undefined
      },
      { what: 'alice online' },
    )
    assert.deepEqual(online.devices, ['phone'])
    process.kill(sub.pid!, 'SIGKILL')
    const offline = await eventually(
      async () => {
        const v = await presence('alice')
        return v.online ? undefined : v
      },
      { what: 'alice offline' },
    )
    assert.equal(offline.reason, 'connection-lost')
    assert.ok(offline.lastSeen > 0)
  })

  it('SIGTERM shuts down cleanly with exit code 0', async () => {
    herald = await spawnHerald('start')
    assert.equal(await herald.kill('SIGTERM'), 0)
    assert.ok(herald.lines.some((l) => l.msg === 'access node stopped'))
  })

  it('SIGTERM with Redis gone: the shutdown gives up after HERALD_SHUTDOWN_TIMEOUT_MS, says so and exits 1', async () => {
    const redis = await RedisServer.start()
    try {
      herald = await spawnHerald('presence', {
        HERALD_REDIS_URL: redis.url,
        HERALD_NODE_ID: 'p1',
        HERALD_SHUTDOWN_TIMEOUT_MS: '1500',
      })
      await redis.kill()
      assert.equal(await herald.kill('SIGTERM'), 1)
      assert.ok(herald.lines.some((l) => l.msg === 'shutdown did not finish in time; exiting'))
    } finally {
      await redis.destroy()
    }
  })

  it('generates a development secret (mode 0600) when none is configured, and `herald token` uses it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-data-'))
    try {
      herald = await spawnHerald('start', { HERALD_AUTH_SECRET: '', HERALD_DATA_DIR: dir })
      const secretFile = join(dir, 'secret')
      assert.equal(statSync(secretFile).mode & 0o777, 0o600)
      const minted = await runHerald(['token', 'bob', '--role', 'service'], { HERALD_DATA_DIR: dir })
      assert.equal(minted.code, 0, minted.stderr)
      const res = await http(herald.httpUrl, '/v1/stats', { token: minted.stdout.trim() })
      assert.equal(res.status, 200)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('`herald token` without a secret says what to do', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-empty-'))
    try {
      const res = await runHerald(['token', 'alice'], { HERALD_DATA_DIR: dir })
      assert.equal(res.code, 1)
      assert.match(res.stderr, /HERALD_AUTH_SECRET|npm start/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
