/**
 * Loaded with `--import` into every Node system under test (bare Aedes too, so both sides pay
 * the same): one line per garbage collection to gcLogPath(process.pid), read by the bench's
 * meters (gc-log.ts). One small synchronous append per collection, a few per second under load.
 */
import { appendFileSync } from 'node:fs'
import { constants, PerformanceObserver, performance } from 'node:perf_hooks'
import { gcLogPath } from './gc-log.js'

const KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
}

const path = gcLogPath(process.pid)
const origin = performance.timeOrigin

new PerformanceObserver((list) => {
  let lines = ''
  for (const e of list.getEntries()) {
    const kind = KINDS[(e as { detail?: { kind?: number } }).detail?.kind ?? 0] ?? 'other'
    lines += `${kind} ${(origin + e.startTime).toFixed(1)} ${e.duration.toFixed(3)}\n`
  }
  try {
    appendFileSync(path, lines)
  } catch {} // the bench reads what it can; a full disk must not stop the system under test
}).observe({ entryTypes: ['gc'] })
