/**
 * A real redis-server for the suite, on a free loopback port, in its own temporary folder,
 * with or without AOF. The suite never touches a Redis it did not start. When redis-server
 * is missing it is installed with apt-get (as root); otherwise one line says what to install.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ports.js'
import { ensureInstalled } from './system.js'

export interface RedisServerOptions {
  /** appendonly yes (every write fsynced each second) — what production compose runs. */
  aof?: boolean
  /** Reuse a data folder (to restart with the same AOF). */
  dir?: string
  port?: number
}

export class RedisServer {
  private child: ChildProcess | undefined
  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly aof: boolean,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  static async start(opts: RedisServerOptions = {}): Promise<RedisServer> {
    ensureRedisInstalled()
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'herald-redis-'))
    const server = new RedisServer(opts.port ?? (await freePort()), dir, opts.aof ?? false)
    await server.spawn()
    return server
  }

  private async spawn(): Promise<void> {
    const args = [
      '--port',
      String(this.port),
      '--bind',
      '127.0.0.1',
      '--dir',
      this.dir,
      '--save',
      '',
      '--appendonly',
      this.aof ? 'yes' : 'no',
      '--appendfsync',
      'everysec',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
      '--loglevel',
      'notice',
    ]
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    await new Promise<void>((resolve, reject) => {
      let out = ''
      const onData = (b: Buffer) => {
        out += b.toString()
        if (/Ready to accept connections/i.test(out)) {
          child.stdout?.off('data', onData)
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.once('exit', (code) =>
        reject(new Error(`redis-server exited (${code}) before it was ready:\n${out}`)),
      )
    })
    child.removeAllListeners('exit')
    // keep draining output so the pipe never fills
    child.stdout?.resume()
    child.stderr?.resume()
  }

  /** SIGKILL: no shutdown save, like a crash. */
  async kill(): Promise<void> {
    await this.signal('SIGKILL')
  }

  /** SIGTERM: a clean shutdown (flushes the AOF). */
  async stop(): Promise<void> {
    await this.signal('SIGTERM')
  }

  /** Starts again on the same port and folder: with AOF it comes back with its data. */
  async restart(opts: { wipe?: boolean } = {}): Promise<void> {
    await this.stop()
    if (opts.wipe) {
      rmSync(this.dir, { recursive: true, force: true })
      this.ensureDir()
    }
    await this.spawn()
  }

  /** Stops and removes the data folder. */
  async destroy(): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }

  private ensureDir() {
    execFileSync('mkdir', ['-p', this.dir])
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(sig)
    await exited
    this.child = undefined
  }
}

export function ensureRedisInstalled(): void {
  ensureInstalled('redis-server', 'redis-server')
}
