/**
 * pino, configured once. Credentials never reach a log line: every field that can carry a
 * password, token or secret is redacted by path. Components log through `child({ component })`.
 */
import { type DestinationStream, type Logger, pino } from 'pino'
import type { LogLevel } from './config.js'

export type { Logger }

export const REDACT_PATHS = [
  'password',
  'token',
  'secret',
  'authSecret',
  'authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.authSecret',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
  'packet.password',
  // ioredis errors carry the failed command: a refused AUTH (WRONGPASS) holds the password
  'err.command.args',
  '*.err.command.args',
]

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const opts = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  }
  return destination ? pino(opts, destination) : pino(opts)
}
