/**
 * Herald as a real child process (`node dist/clients/cli/herald.js <cmd>`), for multi-node and
 * crash tests: started on free ports (`auto`), found ready by its "herald ready" log line, and
 * stopped or killed by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { HERALD_NODE_FLAGS } from '../../clients/cli/node-flags.js'
import { TEST_SECRET } from './herald.js'

export const HERALD_BIN = fileURLToPath(new URL('../../clients/cli/herald.js', import.meta.url))

export interface HeraldProcess {
  child: ChildProcess
  pid: number
  ports: { mqtt?: number; ws?: number; http?: number }
  lines: Array<Record<string, unknown>>
  stderr: string[]
  mqttUrl: string
  httpUrl: string
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>
  kill(signal?: NodeJS.Signals): Promise<number | string>
}

export async function spawnHerald(
  command: 'start' | 'node' | 'presence',
  env: Record<string, string> = {},
  /**
   * fileSizeLimitBytes: the largest file the process may write (RLIMIT_FSIZE, by `ulimit -f`,
   * in 512-byte blocks): past it a write returns short and the next one fails, as a full disk does.
   */
  opts: { readyTimeoutMs?: number; fileSizeLimitBytes?: number } = {},
): Promise<HeraldProcess> {
  const argv = [...HERALD_NODE_FLAGS, HERALD_BIN, command]
  const limit = opts.fileSizeLimitBytes
  const [file, args] =
    limit === undefined
      ? [process.execPath, argv]
      : ['sh', ['-c', `ulimit -f ${Math.ceil(limit / 512)} && exec "$0" "$@"`, process.execPath, ...argv]]
  const child = spawn(file, args, {
    env: {
      PATH: process.env.PATH ?? '',
      // a data folder of its own (memory mode journals its messages there); removed with the run
      HERALD_DATA_DIR: testDataDir(),
      HERALD_MQTT_PORT: 'auto',
      HERALD_WS_PORT: 'auto',
      HERALD_HTTP_PORT: 'auto',
      HERALD_AUTH_SECRET: TEST_SECRET,
      HERALD_LOG_LEVEL: 'info',
      // tests open many connections of one user and device quickly (docs/security.md)
      HERALD_LIMITS: 'relaxed',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: Array<Record<string, unknown>> = []
  const stderr: string[] = []
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1))
  })
  let buffer = ''
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`herald ${command} not ready in time; stderr: ${stderr.join('')}`)),
      opts.readyTimeoutMs ?? 15_000,
    )
    child.stdout?.on('data', (b: Buffer) => {
      buffer += b.toString()
      let nl = buffer.indexOf('\n')
      while (nl >= 0) {
        const raw = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        nl = buffer.indexOf('\n')
        try {
          const line = JSON.parse(raw) as Record<string, unknown>
          lines.push(line)
          if (line.msg === 'herald ready') {
            clearTimeout(timer)
            resolve(line)
          }
        } catch {}
      }
    })
    child.stderr?.on('data', (b: Buffer) => stderr.push(b.toString()))
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`herald ${command} exited (${code}) before ready: ${stderr.join('')}`))
    })
  })
  const readyLine = await ready
  const ports = readyLine.ports as HeraldProcess['ports']
  return {
    child,
    pid: child.pid!,
    ports,
    lines,
    stderr,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    exited,
    kill: async (signal = 'SIGKILL') => {
      if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, signal)
      return exited
    },
  }
}

/** A fresh folder under one per-run root, which the root hooks remove (hooks.ts). */
export function testDataDir(): string {
  return mkdtempSync(join(testRoot(), 'data-'))
}

let root: string | undefined
function testRoot(): string {
  root ??= mkdtempSync(join(tmpdir(), `herald-test-${process.pid}-`))
  return root
}

export function removeTestDataDirs(): void {
  if (root) rmSync(root, { recursive: true, force: true })
  root = undefined
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runHerald(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [HERALD_BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString()
  })
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString()
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  return { code, stdout, stderr }
}
