/** A pino logger that keeps its lines in memory, so tests can assert "refused and logged". */
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { REDACT_PATHS } from '../../services/core/logger.js'

export interface LogLine {
  level: number
  msg: string
  [key: string]: unknown
}

export class LogCapture {
  readonly lines: LogLine[] = []
  private waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = []
  readonly logger = pino(
    { level: 'debug', redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        for (const raw of chunk.toString().split('\n')) {
          if (!raw) continue
          const line = JSON.parse(raw) as LogLine
          this.lines.push(line)
          this.waiters = this.waiters.filter((w) => {
            if (!w.pred(line)) return true
            w.resolve(line)
            return false
          })
        }
        cb()
      },
    }),
  )

  find(pred: (l: LogLine) => boolean): LogLine | undefined {
    return this.lines.find(pred)
  }

  /** Resolves with the first line (already logged or to come) matching `pred`. */
  waitFor(pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const found = this.find(pred)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('log line did not appear in time')), timeoutMs)
      this.waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer)
          resolve(l)
        },
      })
    })
  }
}
