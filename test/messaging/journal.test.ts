/**
 * The embedded default keeps what it acknowledged across a restart: messages, receipts and
 * de-duplication are journaled to the data folder (services/messaging/journal.ts) before the
 * sender hears back — through a graceful restart, a SIGKILL with a torn last line, and the
 * journal's own rewrites while it runs.
 */
import assert from 'node:assert/strict'
import { appendFile, mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mintToken } from '../../services/core/auth.js'
import type { Envelope } from '../../services/core/envelope.js'
import { JournaledMessageStore, MessageJournal } from '../../services/messaging/journal.js'
import { MemoryMessageStore } from '../../services/messaging/memory-store.js'
import { DEFAULT_MESSAGE_LIMITS, type MessageStatus } from '../../services/messaging/store.js'
import { startTestHerald, TEST_SECRET, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { LogCapture } from '../harness/logs.js'
import { connectClient, Inbox } from '../harness/mqtt.js'
import { type HeraldProcess, spawnHerald, testDataDir } from '../harness/process.js'

const service = () => mintToken(TEST_SECRET, 'backend', { role: 'service' })

async function historyOf(base: string, userId: string): Promise<Envelope[]> {
  const token = await service()
  const out: Envelope[] = []
  let after = '0'
  for (;;) {
    const page = await http(base, `/v1/users/${userId}/messages?after=${after}&limit=100`, { token })
    assert.equal(page.status, 200)
    const { messages, next } = page.body as { messages: Envelope[]; next: string }
    out.push(...messages)
    if (messages.length < 100) return out
    after = next
  }
}

async function post(base: string, to: string, id: string): Promise<{ status: number; offset: string }> {
  const res = await http(base, `/v1/users/${to}/messages`, {
    token: await service(),
    body: { id, body: { n: id } },
  })
  return { status: res.status, offset: (res.body as { offset: string }).offset }
}

describe('message journal (memory mode)', function () {
  this.timeout(60_000)
  const dirs: string[] = []
  let herald: TestHerald | undefined
  let proc: HeraldProcess | undefined
  afterEach(async () => {
    await herald?.close()
    herald = undefined
    await proc?.kill()
    proc = undefined
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
  })
  const freshDir = async () => {
    const d = await mkdtemp(join(tmpdir(), 'herald-journal-'))
    dirs.push(d)
    return d
  }

  it('a restart keeps messages with their offsets, receipts, and the de-duplication of what came before', async () => {
    const dataDir = await freshDir()
    herald = await startTestHerald({ dataDir })
    const first = await post(herald.httpUrl, 'bob', 'j-1')
    assert.equal(first.status, 202)
    // bob reads it: the receipt is journaled too
    const bob = await connectClient(herald.mqttUrl, 'bob', 'phone', { token: await herald.token('bob') })
    const inbox = new Inbox<Envelope>(bob, (t) => t === 'users/bob/inbox')
    await bob.subscribeAsync('users/bob/inbox', { qos: 1 })
    await post(herald.httpUrl, 'bob', 'j-2')
    await inbox.seen((e) => e.id === 'j-2')
    await bob.publishAsync('users/backend/receipts', JSON.stringify({ id: 'j-2', status: 'read' }), {
      qos: 1,
    })
    const statusOf = async (h: TestHerald, id: string) =>
      (await http(h.httpUrl, `/v1/messages/${id}?from=backend`, { token: await service() }))
        .body as MessageStatus
    assert.equal((await statusOf(herald, 'j-2')).status, 'read')
    const before = await historyOf(herald.httpUrl, 'bob')
    bob.end(true)
    await herald.close()

    herald = await startTestHerald({ dataDir })
    assert.deepEqual(await historyOf(herald.httpUrl, 'bob'), before)
    assert.deepEqual(
      before.map((e) => e.id),
      ['j-1', 'j-2'],
    )
    assert.equal((await statusOf(herald, 'j-2')).devices.phone?.status, 'read')
    // a back end's retry after the restart is the same message, not a second one
    const retry = await post(herald.httpUrl, 'bob', 'j-1')
    assert.deepEqual(retry, { status: 202, offset: first.offset })
    const next = await post(herald.httpUrl, 'bob', 'j-3')
    assert.ok(
      next.offset.localeCompare(before[1]!.offset!, undefined, { numeric: true }) > 0,
      `${next.offset} after ${before[1]!.offset}`,
    )
    assert.equal((await historyOf(herald.httpUrl, 'bob')).length, 3)
  })

  it('SIGKILL: every message acknowledged before the kill is there after the restart; a torn last line is skipped', async () => {
    const dir = testDataDir()
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir })
    const acked = new Map<string, string>()
    await Promise.all(
      Array.from({ length: 300 }, async (_v, i) => {
        const r = await post(proc!.httpUrl, `u${i % 7}`, `k-${i}`)
        assert.equal(r.status, 202)
        acked.set(`k-${i}`, r.offset)
      }),
    )
    await proc.kill('SIGKILL')
    // a damaged entry, then a write the kill cut in half
    await appendFile(join(dir, 'messages.journal'), '["m"]\n["h","u0",5,"{}"]\n')
    await appendFile(join(dir, 'messages.journal'), '["m","99999999999999-0","{\\"id\\":\\"torn')
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir })
    const found = new Map<string, string>()
    for (let u = 0; u < 7; u++) {
      for (const e of await historyOf(proc.httpUrl, `u${u}`)) found.set(e.id, e.offset!)
    }
    assert.deepEqual(found, acked)
    assert.ok(
      proc.lines.some((l) => l.msg === 'message journal: an unreadable line is skipped'),
      'the torn line is logged',
    )
    assert.equal(
      proc.lines.filter((l) => l.msg === 'message journal: a malformed entry is skipped').length,
      2,
      'each damaged entry is logged',
    )
    // a second process on the same data folder would write the same file: refused, named
    await assert.rejects(spawnHerald('start', { HERALD_DATA_DIR: dir }), /in use by process/)
  })

  it('a full disk: a write cut short acknowledges nothing it did not write, and the journal goes on after it', async () => {
    // past 256 KiB the journal's writes return short, then fail (EFBIG), as on a full disk
    const dir = testDataDir()
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir }, { fileSizeLimitBytes: 256 * 1024 })
    const acked = new Map<string, string>()
    const pad = 'p'.repeat(1000)
    const token = await service()
    await Promise.all(
      Array.from({ length: 400 }, async (_v, i) => {
        const res = await fetch(new URL(`/v1/users/u${i % 3}/messages`, proc!.httpUrl), {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: `d-${i}`, body: { pad } }),
          signal: AbortSignal.timeout(3000),
        }).catch(() => undefined)
        if (res?.status === 202) acked.set(`d-${i}`, ((await res.json()) as { offset: string }).offset)
      }),
    )
    assert.ok(acked.size > 0 && acked.size < 400, `${acked.size} of 400 acknowledged before the disk filled`)
    await proc.kill('SIGKILL')
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir })
    const found = new Map<string, string>()
    for (let u = 0; u < 3; u++) {
      for (const e of await historyOf(proc.httpUrl, `u${u}`)) found.set(e.id, e.offset!)
    }
    for (const [id, offset] of acked) assert.equal(found.get(id), offset, `acknowledged ${id} is kept`)
  })

  it('a full disk at start: the journal is not replaced by a copy cut short', async () => {
    const dir = testDataDir()
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir })
    const pad = 'p'.repeat(900)
    const acked: string[] = []
    for (let i = 0; i < 600; i++) {
      const res = await http(proc.httpUrl, '/v1/users/bob/messages', {
        token: await service(),
        body: { id: `s-${i}`, body: { pad } },
      })
      assert.equal(res.status, 202)
      acked.push(`s-${i}`)
    }
    await proc.kill('SIGTERM')
    // ~600 KiB of journal; the start-time rewrite may write 256 KiB: it must fail, not shorten it
    await spawnHerald('start', { HERALD_DATA_DIR: dir }, { fileSizeLimitBytes: 256 * 1024 }).then(
      async (p) => {
        proc = p
        assert.deepEqual(
          (await historyOf(p.httpUrl, 'bob')).map((e) => e.id),
          acked,
        )
        await p.kill('SIGTERM')
      },
      // refusing to start (EFBIG, logged) leaves the journal as it was
      (err: Error) => assert.match(err.message, /exited \(1\) before ready/),
    )
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir })
    assert.deepEqual(
      (await historyOf(proc.httpUrl, 'bob')).map((e) => e.id),
      acked,
    )
  })

  it('a longer HERALD_DEDUP_WINDOW_MS at the restart keeps a message that was new when it was acknowledged', async () => {
    const dir = testDataDir()
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir, HERALD_DEDUP_WINDOW_MS: '1000' })
    const first = await post(proc.httpUrl, 'bob', 'w-1')
    await new Promise((r) => setTimeout(r, 1300))
    // past the 1 s window: the same id is a new message, with an offset of its own
    const second = await post(proc.httpUrl, 'bob', 'w-1')
    assert.notEqual(second.offset, first.offset)
    const before = await historyOf(proc.httpUrl, 'bob')
    assert.equal(before.length, 2)
    await proc.kill('SIGKILL')
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir, HERALD_DEDUP_WINDOW_MS: '60000' })
    assert.deepEqual(await historyOf(proc.httpUrl, 'bob'), before)
    // and once more, from the state the restart rewrote
    await proc.kill('SIGKILL')
    proc = await spawnHerald('start', { HERALD_DATA_DIR: dir, HERALD_DEDUP_WINDOW_MS: '60000' })
    assert.deepEqual(await historyOf(proc.httpUrl, 'bob'), before)
  })

  it('the lock is the process, not a PID in a file: a reused PID does not block a start; two at once, one wins', async () => {
    const dataDir = await freshDir()
    // a lock file left by a killed process whose PID now belongs to someone else (here PID 1)
    await writeFile(join(dataDir, 'messages.lock'), '1')
    herald = await startTestHerald({ dataDir })
    await herald.close()
    herald = undefined
    // two starts on one data folder at the same moment: exactly one holds it
    const both = await Promise.allSettled([startTestHerald({ dataDir }), startTestHerald({ dataDir })])
    const won = both.filter((r) => r.status === 'fulfilled')
    const lost = both.filter((r) => r.status === 'rejected')
    for (const r of won) await (r as PromiseFulfilledResult<TestHerald>).value.close()
    assert.equal(won.length, 1)
    assert.match(String((lost[0] as PromiseRejectedResult).reason), /in use by/)
  })

  it('rewritten while it runs: the file stays bounded and reads back to the same state', async () => {
    const dir = await freshDir()
    const logs = new LogCapture()
    const limits = { ...DEFAULT_MESSAGE_LIMITS, historyMaxLen: 20 }
    const open = async () => {
      const memory = new MemoryMessageStore(limits)
      const journal = await MessageJournal.open(dir, memory, logs.logger, { compactAtBytes: 16 * 1024 })
      return new JournaledMessageStore(memory, journal)
    }
    let store = await open()
    const offsets: string[] = []
    const pad = 'x'.repeat(1000)
    for (let i = 0; i < 2000; i++) {
      const env = { id: `c-${i}`, from: 'alice', to: 'bob', ts: Date.now(), body: { i, pad } }
      offsets.push((await store.record(env)).offset)
    }
    const page = await store.history('bob', { limit: 100 })
    await store.close()
    const rewrites = logs.lines.filter((l) => l.msg === 'message journal rewritten')
    assert.ok(rewrites.length > 0, 'rewritten at least once')
    // a rewrite keeps 20 history entries and the de-duplication keys and statuses (live for
    // 24 h): under 400 KiB, against the ~2.1 MiB the 2,000 records took as they were appended;
    // the file then grows to at most 4 times that before the next rewrite
    const state = Number(rewrites.at(-1)!.after)
    assert.ok(state < 400 * 1024, `a rewrite of ${state} bytes`)
    const size = (await stat(join(dir, 'messages.journal'))).size
    assert.ok(size <= 4 * state + 16 * 1024, `journal of ${size} bytes, ${state} after the last rewrite`)

    store = await open()
    assert.deepEqual(await store.history('bob', { limit: 100 }), page)
    assert.deepEqual(
      page.messages.map((m) => m.offset),
      offsets.slice(-20),
    )
    const again = await store.record({ id: 'c-5', from: 'alice', to: 'bob', ts: Date.now(), body: {} })
    assert.deepEqual(again, { offset: offsets[5], duplicate: true })
    await store.close()
  })
})
