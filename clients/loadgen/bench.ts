/**
 * `herald bench <scenario>`: starts each system under test on loopback in turn — Herald and
 * bare Aedes (memory, or with the same Redis plugins), and Mosquitto when installed — runs the
 * scenario against it, and reports them side by side with ratios. `resync` and `node-death` run
 * Herald alone, as separate processes (there is no baseline for presence).
 */
import { cpus, totalmem } from 'node:os'
import { addRatios, type Summary, summarize, summaryTable, table, write, writeSummary } from './report.js'
import { isScenarioName, type ScenarioName } from './scenario-names.js'
import { backlogScenario } from './scenarios/backlog.js'
import { stopStarted } from './scenarios/children.js'
import { churnScenario } from './scenarios/churn.js'
import type { ScenarioOptions, ScenarioResult } from './scenarios/common.js'
import { connectScenario } from './scenarios/connect.js'
import { detectScenario } from './scenarios/detect.js'
import { idleScenario } from './scenarios/idle.js'
import { idleVirtualScenario } from './scenarios/idle-virtual.js'
import { messagesScenario } from './scenarios/messages.js'
import { nodeDeathScenario } from './scenarios/node-death.js'
import { resyncScenario } from './scenarios/resync.js'
import {
  hasMosquitto,
  startAedes,
  startHerald,
  startHeraldSplit,
  startMosquitto,
  type Target,
} from './targets.js'

export type Scenario = (targets: Target[], opts: ScenarioOptions) => Promise<ScenarioResult>

export const SCENARIOS: Record<
  ScenarioName,
  {
    run: Scenario
    defaults: Partial<ScenarioOptions>
    /** Starts its own systems (Herald in several processes): no targets, no baselines. */
    standalone?: boolean
    /**
     * With --virtual: connections over in-memory streams in the server process. `true` when the
     * scenario itself takes `virtual`; a scenario of its own (standalone) otherwise.
     */
    virtual?: true | Scenario
  }
> = {
  connect: { run: connectScenario, defaults: { n: 2000, rates: [500, 1000] } },
  churn: { run: churnScenario, defaults: { n: 500, durationMs: 10_000 } },
  idle: { run: idleScenario, defaults: { n: 10_000, workers: 2 }, virtual: idleVirtualScenario },
  detect: { run: detectScenario, defaults: { n: 200 } },
  messages: { run: messagesScenario, defaults: { n: 100, rates: [500, 2000], durationMs: 5000 } },
  backlog: { run: backlogScenario, defaults: { n: 10_000 } },
  resync: { run: resyncScenario, defaults: { n: 10_000, workers: 2 }, standalone: true, virtual: true },
  'node-death': {
    run: nodeDeathScenario,
    defaults: { n: 10_000, workers: 2 },
    standalone: true,
    virtual: true,
  },
}

export interface BenchOptions extends Partial<ScenarioOptions> {
  mode: 'memory' | 'redis'
  /** Which systems: herald, aedes, mosquitto (default all available). */
  only?: string[]
  out: string
  log?: (line: string) => void
  /** Connections over in-memory streams in the server process (idle, resync, node-death). */
  virtual?: boolean
  /** QoS levels to run (messages). */
  qos?: Array<0 | 1>
  /** Print the table on stdout (default true). */
  print?: boolean
}

export async function runBench(name: string, opts: BenchOptions): Promise<ScenarioResult> {
  if (!isScenarioName(name))
    throw new Error(`unknown scenario ${name}; one of ${Object.keys(SCENARIOS).join(', ')}`)
  const scenario = SCENARIOS[name]
  const o: ScenarioOptions = {
    n: opts.n ?? scenario.defaults.n ?? 1000,
    durationMs: opts.durationMs ?? scenario.defaults.durationMs ?? 5000,
    rates: opts.rates ?? scenario.defaults.rates ?? [],
    workers: opts.workers ?? scenario.defaults.workers ?? 1,
    virtual: opts.virtual ?? false,
  }
  if (opts.qos) o.qos = opts.qos
  if (o.virtual && !scenario.virtual) {
    throw new Error(`${name} has no --virtual form; these do: ${virtualScenarios().join(', ')}`)
  }
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`))
  const wanted = (kind: string) => !opts.only || opts.only.includes(kind)
  const starters: Array<[string, () => Promise<Target>]> = []
  if (wanted('herald')) starters.push([`herald-${opts.mode}`, () => startHerald(opts.mode)])
  // the cluster layout: access node and presence service in processes of their own (Redis only)
  if (opts.only?.includes('herald-split')) {
    if (opts.mode !== 'redis')
      throw new Error('herald-split needs --mode redis (the processes meet in Redis)')
    starters.push(['herald-redis-split', () => startHeraldSplit()])
  }
  if (wanted('aedes')) starters.push([`aedes-${opts.mode}`, () => startAedes(opts.mode)])
  const notes: string[] = []
  if (wanted('mosquitto')) {
    if (opts.mode === 'memory' && hasMosquitto()) starters.push(['mosquitto', () => startMosquitto()])
    else if (opts.mode === 'memory')
      notes.push('mosquitto not installed (apt-get install mosquitto): no Mosquitto baseline')
  }
  const results: ScenarioResult[] = []
  const own = o.virtual && typeof scenario.virtual === 'function' ? scenario.virtual : undefined
  if (own || scenario.standalone) {
    log(`bench ${name}${o.virtual ? ' --virtual' : ''}: running (it starts its own processes)`)
    // interrupted: what the scenario started must not outlive the bench
    const interrupted = (signal: NodeJS.Signals) => {
      void stopStarted().finally(() => process.kill(process.pid, signal))
    }
    process.once('SIGINT', interrupted)
    process.once('SIGTERM', interrupted)
    try {
      results.push(await (own ?? scenario.run)([], { ...o, mode: opts.mode, only: opts.only }))
    } finally {
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
    }
    starters.length = 0
  }
  for (const [label, start] of starters) {
    log(`bench ${name}: starting ${label}`)
    const target = await start()
    // interrupted (Ctrl-C, a timeout's SIGTERM): the system under test must not outlive the bench
    const interrupted = (signal: NodeJS.Signals) => {
      void target.stop().finally(() => process.kill(process.pid, signal))
    }
    process.once('SIGINT', interrupted)
    process.once('SIGTERM', interrupted)
    try {
      log(`bench ${name}: running against ${label}`)
      results.push(await scenario.run([target], o))
    } finally {
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
      await target.stop()
    }
  }
  const merged: ScenarioResult = {
    scenario: name,
    // the standalone scenarios are Herald over Redis whatever --mode says
    params: { ...results[0]?.params, mode: scenario.standalone ? 'redis' : opts.mode },
    rows: results.flatMap((r) => r.rows),
    notes: [...new Set([...results.flatMap((r) => r.notes), ...notes])],
  }
  addRatios(merged)
  const files = write(merged, opts.out, {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    command: `herald bench ${process.argv.slice(3).join(' ')}`.trim(),
  })
  if (opts.print ?? true)
    process.stdout.write(`${table(merged)}\nwritten: ${files.json}\n         ${files.svg}\n`)
  return merged
}

/** The scenarios with a --virtual form (scenario-names.ts lists them too, for the CLI's help). */
export function virtualScenarios(): ScenarioName[] {
  return (Object.keys(SCENARIOS) as ScenarioName[]).filter((name) => SCENARIOS[name].virtual)
}

/**
 * `--repeat <n>`: the whole bench `n` times (every system in turn each time, so Herald and its
 * baselines alternate), each round printed and written as a single run is, then the median and
 * range of every ratio over the rounds — one run on a shared machine is one draw of its noise.
 */
export async function runRounds(
  name: string,
  opts: BenchOptions,
  rounds: number,
): Promise<{ results: ScenarioResult[]; summary: Summary; file: string }> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`))
  const results: ScenarioResult[] = []
  for (let i = 1; i <= rounds; i++) {
    log(`bench ${name}: round ${i} of ${rounds}`)
    results.push(await runBench(name, opts))
  }
  const summary = summarize(results)
  const file = writeSummary(summary, opts.out)
  if (opts.print ?? true) process.stdout.write(`${summaryTable(summary)}\nwritten: ${file}\n`)
  return { results, summary, file }
}
