/**
 * Results people can look at: a table on stdout, JSON and an SVG chart per scenario next to
 * it, with Herald/baseline ratios computed from the same run.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Row, ScenarioResult } from './scenarios/common.js'

/** The metric each scenario is judged by (higher is better unless `lower`). */
export const HEADLINE: Record<string, { metric: string; lower?: boolean }> = {
  connect: { metric: 'connectsPerSec' },
  churn: { metric: 'opsPerSec' },
  idle: { metric: 'kibPerConnection', lower: true },
  detect: { metric: 'p99Ms', lower: true },
  messages: { metric: 'deliveredPerSec' },
}

/** Rows sharing every parameter but the target, grouped (e.g. one rate, one QoS). */
function groupKey(row: Row, metric: string): string {
  return (
    Object.entries(row)
      .filter(([k]) => k === 'rate' || k === 'qos')
      .map(([k, v]) => `${k}=${v}`)
      .join(',') || metric
  )
}

/**
 * CPU per operation (server process + its redis-server, µs) where a scenario measured it. Its
 * ratio `cpuVsAedes` is bare Aedes's cost over Herald's, so it reads like the throughput
 * ratio: 1 = as cheap as bare Aedes, 0.5 = twice the CPU for the same work.
 */
const CPU_METRIC = 'cpuUsPerOp'

/** The ratio of two measurements, two decimals; undefined when either is missing or zero. */
function ratio(value: number, base: number): number | undefined {
  if (!Number.isFinite(value) || !Number.isFinite(base) || base === 0 || value === 0) return undefined
  return Math.round((value / base) * 100) / 100
}

/**
 * A row that left acknowledged messages undelivered (messages, QoS 1) measured a system falling
 * behind, not its throughput: no ratio is taken from it, on either side.
 */
function comparable(row: Row | undefined): row is Row {
  return row !== undefined && !(Number(row.undelivered) > 0)
}

/** Adds `vsAedes` / `vsMosquitto` ratios of the headline metric (and `cpuVsAedes`) to Herald rows. */
export function addRatios(result: ScenarioResult): void {
  const head = HEADLINE[result.scenario]
  if (!head) return
  const groups = new Map<string, Row[]>()
  for (const row of result.rows) {
    const key = groupKey(row, head.metric)
    groups.set(key, [...(groups.get(key) ?? []), row])
  }
  for (const rows of groups.values()) {
    for (const row of rows) {
      if (!String(row.target).startsWith('herald') || !comparable(row)) continue
      const mode = String(row.target).split('-')[1]
      const value = Number(row[head.metric])
      for (const [label, name] of [
        ['vsAedes', `aedes-${mode}`],
        ['vsMosquitto', 'mosquitto'],
      ] as const) {
        const base = rows.find((r) => r.target === name)
        const r = ratio(value, comparable(base) ? Number(base[head.metric]) : Number.NaN)
        if (r !== undefined) row[label] = r
      }
      const aedes = rows.find((r) => r.target === `aedes-${mode}`)
      if (row[CPU_METRIC] !== undefined && comparable(aedes) && aedes[CPU_METRIC] !== undefined) {
        const r = ratio(Number(aedes[CPU_METRIC]), Number(row[CPU_METRIC]))
        if (r !== undefined) row.cpuVsAedes = r
      }
    }
  }
}

export function table(result: ScenarioResult): string {
  const cols = [...new Set(result.rows.flatMap((r) => Object.keys(r)))]
  const cells = result.rows.map((r) =>
    cols.map((c) => (r[c] === null || r[c] === undefined ? '-' : String(r[c]))),
  )
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)))
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ')
  return [
    `== ${result.scenario} ${JSON.stringify(result.params)}`,
    line(cols),
    line(widths.map((w) => '-'.repeat(w))),
    ...cells.map(line),
    ...result.notes.map((n) => `note: ${n}`),
  ].join('\n')
}

/** A bar chart of the headline metric per row (grouped by rate/QoS), as an SVG document. */
export function svg(result: ScenarioResult): string {
  const head = HEADLINE[result.scenario] ?? { metric: Object.keys(result.rows[0] ?? {})[1] ?? 'value' }
  const bars = result.rows.map((r) => ({
    label: `${r.target}${r.qos !== undefined ? ` q${r.qos}` : ''}${r.rate !== undefined ? ` @${r.rate}` : ''}`,
    value: Number(r[head.metric]) || 0,
    herald: String(r.target).startsWith('herald'),
  }))
  const max = Math.max(1, ...bars.map((b) => b.value))
  const rowH = 22
  const width = 760
  const left = 230
  const height = 40 + bars.length * rowH
  const esc = (s: string) => s.replace(/[<>&"]/g, (c) => `&#${c.charCodeAt(0)};`)
  const items = bars
    .map((b, i) => {
      const y = 30 + i * rowH
      const w = Math.max(1, ((width - left - 80) * b.value) / max)
      return [
        `<text x="${left - 8}" y="${y + 14}" text-anchor="end" font-size="12">${esc(b.label)}</text>`,
        `<rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${b.herald ? '#2b6cb0' : '#a0aec0'}"/>`,
        `<text x="${left + w + 6}" y="${y + 14}" font-size="12">${b.value}</text>`,
      ].join('')
    })
    .join('\n')
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${esc(`${result.scenario}: ${head.metric}${head.lower ? ' (lower is better)' : ''}`)}</text>`,
    items,
    '</svg>',
  ].join('\n')
}

export function write(
  result: ScenarioResult,
  dir: string,
  meta: Record<string, unknown>,
): { json: string; svg: string } {
  // one time in both names: a run's JSON and its chart go together
  const at = stamp()
  const json = writeStamped(dir, result.scenario, 'json', JSON.stringify({ ...meta, ...result }, null, 2), at)
  const chart = writeStamped(dir, result.scenario, 'svg', svg(result), at)
  return { json, svg: chart }
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-')

/** Writes `<dir>/<name>-<time>.<ext>` (the folder made if needed); returns its path. */
function writeStamped(dir: string, name: string, ext: string, text: string, at = stamp()): string {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `${name}-${at}.${ext}`)
  writeFileSync(path, text)
  return path
}

/** Writes a summary of rounds as `<scenario>-summary-<time>.json`; returns its path. */
export function writeSummary(summary: Summary, dir: string): string {
  return writeStamped(dir, `${summary.scenario}-summary`, 'json', JSON.stringify(summary, null, 2))
}

/** The ratios a row of Herald's carries (addRatios). */
const RATIOS = ['vsAedes', 'vsMosquitto', 'cpuVsAedes']
/** Latencies the goals set in milliseconds (presence visible, QoS 1 end to end): beside the ratios. */
const GOAL_LATENCIES = ['presenceP99', 'e2eP99']
/** What tells a row from the others of its round (the rest are measurements). */
const IDENTITY = ['target', 'case', 'qos', 'rate']

export interface Spread {
  median: number
  min: number
  max: number
  /** One per round, in round order. */
  values: number[]
}

export interface Summary {
  scenario: string
  params: ScenarioResult['params']
  rounds: number
  rows: Array<Record<string, string | number | Spread>>
}

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median: Math.round(median * 100) / 100, min: sorted[0]!, max: sorted.at(-1)!, values }
}

/**
 * Herald's rows over several rounds of one scenario (each round every system in turn): per
 * row, the median and range of each ratio to the baselines — what a noisy, shared machine can
 * still tell — and of the p99 latencies the goals name, or of every measurement where a
 * scenario has no baseline (resync, node-death).
 */
export function summarize(rounds: ScenarioResult[]): Summary {
  const byKey = new Map<string, { id: Record<string, string | number>; rows: Row[] }>()
  for (const round of rounds) {
    for (const row of round.rows) {
      if (!String(row.target).startsWith('herald')) continue
      const id: Record<string, string | number> = {}
      for (const k of IDENTITY) if (row[k] !== undefined && row[k] !== null) id[k] = row[k]!
      const key = JSON.stringify(id)
      const entry = byKey.get(key) ?? { id, rows: [] }
      entry.rows.push(row)
      byKey.set(key, entry)
    }
  }
  const rows = [...byKey.values()].map(({ id, rows }) => {
    const present = (cols: string[]) => cols.filter((c) => rows.some((r) => typeof r[c] === 'number'))
    const ratios = present(RATIOS)
    const cols =
      ratios.length > 0
        ? [...ratios, ...present(GOAL_LATENCIES)]
        : present(Object.keys(rows[0]!).filter((k) => !IDENTITY.includes(k)))
    const out: Record<string, string | number | Spread> = { ...id, rounds: rows.length }
    for (const c of cols) {
      const values = rows.map((r) => r[c]).filter((v): v is number => typeof v === 'number')
      if (values.length > 0) out[c] = spread(values)
    }
    return out
  })
  return { scenario: rounds[0]?.scenario ?? '', params: rounds[0]?.params ?? {}, rounds: rounds.length, rows }
}

/** A summary as a table: each spread as `median (min–max)`. */
export function summaryTable(summary: Summary): string {
  const flat: ScenarioResult = {
    scenario: `${summary.scenario} over ${summary.rounds} rounds: median (min–max)`,
    params: summary.params,
    rows: summary.rows.map((r) => {
      const row: Row = { target: String(r.target) }
      for (const [k, v] of Object.entries(r)) {
        if (k === 'target') continue
        // a ratio not taken in every round (a round without a steady baseline) says so
        const of =
          typeof v === 'object' && v.values.length < Number(r.rounds)
            ? `, ${v.values.length} of ${r.rounds}`
            : ''
        row[k] = typeof v === 'object' ? `${v.median} (${v.min}–${v.max}${of})` : v
      }
      return row
    }),
    notes: [],
  }
  return table(flat)
}
