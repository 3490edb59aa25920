/**
 * The embedded message store's journal: what the all-in-one process records (messages,
 * receipts, de-duplication) written to a file in its data folder before it is acknowledged,
 * so a restart — or a crash — of `npm start` loses none of it. Redis mode has Redis for this.
 *
 * One JSON array per line (MemoryMessageStore's JournalEntry). The records of one event-loop
 * turn go out in one write, in order, and each resolves once its write returned: the bytes
 * are in the kernel, so they survive the process; an fdatasync follows within a second (what
 * Redis's `appendfsync everysec` promises against a machine crash). At open the file is read
 * back into the store, then rewritten as the store's live state (expired messages dropped); a
 * file grown past 4 times that, and past `compactAtBytes`, is rewritten the same way while
 * Herald runs. A torn last line (a crash mid-write) is skipped with a warning.
 */
import { createReadStream } from 'node:fs'
import { type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ConfigError } from '../core/config.js'
import type { Envelope } from '../core/envelope.js'
import type { Logger } from '../core/logger.js'
import type { JournalEntry, MemoryMessageStore } from './memory-store.js'
import {
  type HistoryPage,
  historyJson,
  type MessageStatus,
  type MessageStore,
  type ReceiptInput,
  type ReceiptVerdict,
  type RecordResult,
} from './store.js'

const FILE = 'messages.journal'
const LOCK = 'messages.lock'

export interface JournalOptions {
  /** A file grown past this (and past 4 times its size after the last rewrite) is rewritten. */
  compactAtBytes?: number
  /** How often written bytes are made durable against a machine crash (fdatasync), ms. */
  syncEveryMs?: number
}

interface Pending {
  line: string
  resolve: () => void
}

export class MessageJournal {
  private queue: Pending[] = []
  private writing = false
  private dirty = false
  private syncing = false
  private closed = false
  /** Bytes in the file, and after the last rewrite. */
  private bytes = 0
  private compactedBytes = 0
  private failures = 0
  /** The bytes a failed write did not write, and the entries they belong to. */
  private carry: { buf: Buffer; batch: Pending[] } | undefined
  private readonly syncTimer: NodeJS.Timeout
  /**
   * Set while the file is rewritten from the store: records and receipts wait for it, so the
   * store holds still while it is read (and their entries follow the state in the new file).
   */
  rewriting: Promise<void> | undefined
  /** The lock (Linux: an abstract socket the kernel frees when this process ends). */
  private held: Server | undefined

  private constructor(
    private readonly dir: string,
    private fh: FileHandle,
    private readonly store: MemoryMessageStore,
    private readonly log: Logger,
    private readonly opts: Required<JournalOptions>,
  ) {
    this.syncTimer = setInterval(() => this.sync(), opts.syncEveryMs)
    this.syncTimer.unref()
  }

  /**
   * Locks the journal in `dir` to this process, reads it into `store` and rewrites it as the
   * store's live state. Refuses a journal another live process holds.
   */
  static async open(
    dir: string,
    store: MemoryMessageStore,
    log: Logger,
    opts: JournalOptions = {},
  ): Promise<MessageJournal> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const held = await lock(dir)
    try {
      const started = Date.now()
      const read = await replay(join(dir, FILE), store, log)
      const journal = new MessageJournal(dir, await rewrite(dir, store), store, log, {
        compactAtBytes: opts.compactAtBytes ?? 64 * 1024 * 1024,
        syncEveryMs: opts.syncEveryMs ?? 1000,
      })
      journal.bytes = journal.compactedBytes = (await journal.fh.stat()).size
      log.info(
        {
          file: join(dir, FILE),
          entries: read.entries,
          skipped: read.skipped,
          bytes: journal.bytes,
          ms: Date.now() - started,
        },
        'message journal read',
      )
      journal.held = held
      return journal
    } catch (err) {
      held?.close()
      throw err
    }
  }

  /** Resolves once the entry is written (in order with every other). */
  append(entry: JournalEntry): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the message journal is closed'))
    return new Promise((resolve) => {
      this.queue.push({ line: `${JSON.stringify(entry)}\n`, resolve })
      if (this.queue.length === 1 && !this.writing) setImmediate(this.flush)
    })
  }

  /** Resolves once everything appended before it is written. */
  written(): Promise<void> {
    if (this.queue.length === 0 && !this.writing && !this.carry) return Promise.resolve()
    return new Promise((resolve) => {
      this.queue.push({ line: '', resolve })
    })
  }

  private readonly flush = () => {
    if (this.writing || (this.queue.length === 0 && !this.carry)) return
    this.writing = true
    const queued = this.queue
    this.queue = []
    const fresh = Buffer.from(queued.map((p) => p.line).join(''))
    // what a failed write left unwritten goes first, from the byte where it stopped
    const carry = this.carry
    this.carry = undefined
    const buf = carry ? Buffer.concat([carry.buf, fresh]) : fresh
    const batch = carry ? carry.batch.concat(queued) : queued
    let done = 0
    writeFully(this.fh, buf, (n) => {
      done += n
    }).then(
      () => {
        this.failures = 0
        this.bytes += buf.length
        this.dirty = true
        for (const p of batch) p.resolve()
        if (this.bytes > Math.max(this.opts.compactAtBytes, 4 * this.compactedBytes)) {
          this.compact().finally(this.next)
        } else {
          this.next()
        }
      },
      (err: Error) => {
        // nothing is acknowledged until it is written: a write may have stopped part-way (a full
        // disk writes what fits), so keep the bytes not written yet, first, and try again
        this.bytes += done
        if (done > 0) this.dirty = true
        this.carry = { buf: buf.subarray(done), batch }
        if (this.failures++ % 60 === 0) {
          this.log.error(
            { err: err.message, waiting: batch.length + this.queue.length },
            'cannot write the message journal; retrying',
          )
        }
        setTimeout(this.next, 1000).unref()
      },
    )
  }

  private readonly next = () => {
    this.writing = false
    if ((this.queue.length > 0 || this.carry) && !this.closed) setImmediate(this.flush)
  }

  /**
   * Rewrites the file as the store's state now. Runs between writes (`writing` stays set), so
   * the entries appended meanwhile wait and go to the new file after the state they follow.
   */
  private async compact(): Promise<void> {
    const started = Date.now()
    const before = this.bytes
    let done!: () => void
    this.rewriting = new Promise<void>((resolve) => {
      done = resolve
    })
    try {
      const fh = await rewrite(this.dir, this.store)
      await this.fh.close()
      this.fh = fh
      this.bytes = this.compactedBytes = (await fh.stat()).size
      this.dirty = false
      this.log.info({ before, after: this.bytes, ms: Date.now() - started }, 'message journal rewritten')
    } catch (err) {
      // the old file is still whole (the new one replaces it only once written): go on with it
      this.compactedBytes = this.bytes
      this.log.error({ err: (err as Error).message }, 'could not rewrite the message journal; keeping it')
    } finally {
      this.rewriting = undefined
      done()
    }
  }

  private sync(): void {
    if (!this.dirty || this.syncing) return
    this.dirty = false
    this.syncing = true
    this.fh
      .datasync()
      .catch((err: Error) => {
        this.dirty = true
        this.log.warn({ err: err.message }, 'could not sync the message journal')
      })
      .finally(() => {
        this.syncing = false
      })
  }

  /** Writes what is queued, syncs it and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return
    while (this.writing || this.queue.length > 0 || this.carry) {
      if (!this.writing) this.flush()
      await new Promise((r) => setTimeout(r, 5))
    }
    this.closed = true
    clearInterval(this.syncTimer)
    await this.fh.datasync().catch(() => {})
    await this.fh.close()
    await rm(join(this.dir, LOCK), { force: true })
    this.held?.close()
  }
}

/** Reads the journal into the store, entry by entry. */
async function replay(
  file: string,
  store: MemoryMessageStore,
  log: Logger,
): Promise<{ entries: number; skipped: number }> {
  const size = await stat(file).then(
    (s) => s.size,
    () => -1,
  )
  if (size < 0) return { entries: 0, skipped: 0 }
  let entries = 0
  let skipped = 0
  let lineNo = 0
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY })
  for await (const line of lines) {
    lineNo++
    if (line === '') continue
    let entry: JournalEntry
    try {
      entry = JSON.parse(line) as JournalEntry
      if (!Array.isArray(entry)) throw new Error('not an entry')
    } catch {
      // a torn last line is a crash mid-write: its record was never acknowledged
      skipped++
      log.warn({ file, line: lineNo }, 'message journal: an unreadable line is skipped')
      continue
    }
    try {
      store.replay(entry)
    } catch (err) {
      // JSON but not an entry this version can apply (a damaged line): skipped and named
      skipped++
      log.warn(
        { file, line: lineNo, err: (err as Error).message },
        'message journal: a malformed entry is skipped',
      )
      continue
    }
    entries++
  }
  return { entries, skipped }
}

/**
 * Writes the store's state to a new file and puts it in the journal's place (a rename: a
 * crash leaves the old file or the new one whole). Returns the new file, open for appending.
 */
async function rewrite(dir: string, store: MemoryMessageStore): Promise<FileHandle> {
  // The store does not change meanwhile: at start nothing records yet, and while Herald runs
  // records and receipts wait for the rewrite (MessageJournal.rewriting). So the state is read
  // a chunk at a time, written, and the event loop serves everything else in between: a large
  // state (a million messages, 300 MB) no longer stops the node for seconds.
  const tmp = join(dir, `${FILE}.tmp`)
  const out = await open(tmp, 'w', 0o600)
  try {
    try {
      let chunk = ''
      for (const entry of store.entries()) {
        chunk += `${JSON.stringify(entry)}\n`
        if (chunk.length >= 1 << 20) {
          await writeFully(out, Buffer.from(chunk))
          chunk = ''
        }
      }
      await writeFully(out, Buffer.from(chunk))
      await out.datasync()
    } finally {
      await out.close()
    }
  } catch (err) {
    // a full disk: the old file stays, and the part-written copy does not keep the space
    await rm(tmp, { force: true })
    throw err
  }
  await rename(tmp, join(dir, FILE))
  const dh = await open(dir, 'r')
  await dh.sync().finally(() => dh.close())
  return open(join(dir, FILE), 'a', 0o600)
}

/**
 * Writes all of `buf`. A write can return short without an error (a full disk or a file-size
 * limit writes what fits); the rest is written again, which then fails with the reason.
 */
async function writeFully(fh: FileHandle, buf: Buffer, wrote: (n: number) => void = () => {}): Promise<void> {
  let off = 0
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off)
    if (bytesWritten <= 0) throw new Error('the message journal write wrote nothing')
    off += bytesWritten
    wrote(bytesWritten)
  }
}

/**
 * Takes the journal for this process: refused while another process holds it. On Linux the
 * lock is an abstract Unix socket named after the data folder (its device and inode), which the
 * kernel releases when its process ends, however it ends: no stale lock after a SIGKILL, no
 * PID reused by an unrelated process mistaken for the holder, no two starts both taking a
 * stale one. The lock file only tells who holds it (and is the lock elsewhere).
 */
async function lock(dir: string): Promise<Server | undefined> {
  const file = join(dir, LOCK)
  const refuse = async (): Promise<never> => {
    const holder = (await readFile(file, 'utf8').catch(() => '')).trim()
    throw new ConfigError(
      'HERALD_DATA_DIR',
      `the message journal in ${dir} is in use by ${holder ? `process ${holder}` : 'another process'}: another herald start with this data folder is running`,
    )
  }
  if (process.platform === 'linux') {
    const { dev, ino } = await stat(dir)
    const server = createServer()
    const taken = await new Promise<boolean>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        err.code === 'EADDRINUSE' ? resolve(false) : reject(err),
      )
      server.listen({ path: `\0herald-journal-${dev}-${ino}` }, () => resolve(true))
    })
    if (!taken) return refuse()
    server.unref()
    await writeFile(file, String(process.pid), { mode: 0o600 })
    return server
  }
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 })
      return undefined
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const holder = Number((await readFile(file, 'utf8').catch(() => '')).trim())
    if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && alive(holder)) return refuse()
    // left by a process that is gone (or by this one): take it over
    await rm(file, { force: true })
  }
  throw new Error(`could not lock the message journal in ${dir}`)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The memory store with its journal: what it records and acknowledges, it has written. */
export class JournaledMessageStore implements MessageStore {
  constructor(
    private readonly memory: MemoryMessageStore,
    private readonly journal: MessageJournal,
  ) {}

  async record(env: Envelope, json = historyJson(env)): Promise<RecordResult> {
    while (this.journal.rewriting) await this.journal.rewriting
    const r = await this.memory.record(env, json)
    // a repeat is acknowledged too: not before the first one's entry is written
    if (r.duplicate) await this.journal.written()
    else await this.journal.append(['m', r.offset, json])
    return r
  }

  async receipt(r: ReceiptInput): Promise<ReceiptVerdict> {
    while (this.journal.rewriting) await this.journal.rewriting
    const verdict = await this.memory.receipt(r)
    if (verdict === 'recorded')
      await this.journal.append(['r', r.from, r.id, r.by, r.deviceId, r.status, r.ts])
    else if (verdict === 'unchanged') await this.journal.written()
    return verdict
  }

  history(
    userId: string,
    opts: { after?: string; limit: number; deviceId?: string; maxBytes?: number },
  ): Promise<HistoryPage> {
    return this.memory.history(userId, opts)
  }

  status(from: string, id: string): Promise<MessageStatus | undefined> {
    return this.memory.status(from, id)
  }

  close(): Promise<void> {
    return this.journal.close()
  }
}
