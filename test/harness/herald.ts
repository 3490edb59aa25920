/**
 * Herald in this process, on free ports, with a captured log: for integration tests that need
 * real sockets and real Redis but not a separate process.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mintToken, type Role } from '../../services/core/auth.js'
import { type HeraldConfig, loadConfig } from '../../services/core/config.js'
import { Herald, type HeraldMode } from '../../services/runtime/herald.js'
import { LogCapture } from './logs.js'

export const TEST_SECRET = 'herald-test-secret-0123456789abcdef'

export interface TestHerald {
  herald: Herald
  logs: LogCapture
  mqttUrl: string
  wsUrl: string
  httpUrl: string
  token(userId: string, opts?: { role?: Role; ttl?: string | number }): Promise<string>
  close(): Promise<void>
}

export async function startTestHerald(
  overrides: Partial<HeraldConfig> = {},
  mode: HeraldMode = 'all',
): Promise<TestHerald> {
  const config = loadConfig({
    env: {},
    overrides: {
      mqttPort: 'auto',
      wsPort: 'auto',
      httpPort: 'auto',
      authSecret: TEST_SECRET,
      nodeHeartbeatMs: 500,
      // tests open many connections of one user and device quickly (docs/security.md)
      limits: 'relaxed',
      ...overrides,
    },
  })
  // a data folder of its own (memory mode journals its messages there), gone when it closes
  const ownDir = overrides.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'herald-test-')) : undefined
  if (ownDir) config.dataDir = ownDir
  const removeDir = () => (ownDir ? rm(ownDir, { recursive: true, force: true }) : Promise.resolve())
  const logs = new LogCapture()
  const herald = await Herald.start({ config, logger: logs.logger, mode }).catch(async (err: unknown) => {
    await removeDir()
    throw err
  })
  const ports = herald.ports
  return {
    herald,
    logs,
    mqttUrl: `mqtt://127.0.0.1:${ports.mqtt}`,
    wsUrl: `ws://127.0.0.1:${ports.ws}/mqtt`,
    httpUrl: `http://127.0.0.1:${ports.http}`,
    token: (userId, opts) => mintToken(TEST_SECRET, userId, opts),
    close: () => herald.close().finally(removeDir),
  }
}
