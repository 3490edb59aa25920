/**
 * Every `herald bench` scenario at a tiny scale, as a smoke test: it fails when a scenario
 * breaks, never on speed.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runBench, runRounds, SCENARIOS, virtualScenarios } from '../../clients/loadgen/bench.js'
import { gcLogPath, gcPausesSince } from '../../clients/loadgen/gc-log.js'
import { addRatios, type Spread, summarize } from '../../clients/loadgen/report.js'
import { SCENARIO_NAMES, VIRTUAL_SCENARIOS } from '../../clients/loadgen/scenario-names.js'
import type { ScenarioResult } from '../../clients/loadgen/scenarios/common.js'
import { nodeArgs, stopChild } from '../../clients/loadgen/targets.js'
import { eventually } from '../harness/wait.js'

const TINY: Record<string, Parameters<typeof runBench>[1]> = {
  connect: { mode: 'memory', n: 20, rates: [100], out: '' },
  churn: { mode: 'memory', n: 20, durationMs: 1000, out: '' },
  idle: { mode: 'memory', n: 50, workers: 1, out: '' },
  detect: { mode: 'memory', n: 3, out: '' },
  messages: { mode: 'memory', n: 5, rates: [100], durationMs: 500, out: '' },
  // past the 1,000 a session keeps, so the catch-up by offset is part of it
  backlog: { mode: 'memory', n: 1200, out: '' },
  resync: { mode: 'redis', n: 30, workers: 1, out: '' },
  'node-death': { mode: 'redis', n: 30, workers: 1, out: '' },
}

describe('herald bench (smoke, tiny scale)', function () {
  this.timeout(120_000)
  const out = mkdtempSync(join(tmpdir(), 'herald-bench-'))
  after(() => rmSync(out, { recursive: true, force: true }))

  it("the CLI's light list of scenarios is the bench's", () => {
    assert.deepEqual([...SCENARIO_NAMES].sort(), Object.keys(SCENARIOS).sort())
    assert.deepEqual([...VIRTUAL_SCENARIOS].sort(), virtualScenarios().sort())
  })

  for (const name of SCENARIO_NAMES) {
    it(`${name} runs against Herald and bare Aedes and writes JSON and SVG`, async () => {
      const result = await runBench(name, {
        ...TINY[name]!,
        only: ['herald', 'aedes'],
        out,
        log: () => {},
        print: false,
      })
      const targets = new Set(result.rows.map((r) => r.target))
      assert.deepEqual(
        [...targets].sort(),
        SCENARIOS[name]!.standalone ? ['herald-redis'] : ['aedes-memory', 'herald-memory'],
      )
      if (name === 'resync') {
        assert.deepEqual(
          result.rows.map((r) => [r.case, r.connections, r.storeComplete]),
          [
            ['warm', 30, 'yes'],
            ['cold', 30, 'yes'],
          ],
        )
      }
      for (const row of result.rows) {
        for (const [k, v] of Object.entries(row)) {
          if (typeof v === 'number') assert.ok(Number.isFinite(v) && v >= 0, `${name}.${k} = ${v}`)
        }
      }
      if (name === 'node-death') {
        assert.deepEqual(
          result.rows.map((r) => [r.liveNodesLeft, r.connections, r.allOffline]),
          [
            [0, 30, 'yes'],
            [1, 30, 'yes'],
          ],
          'alone and with a node left, the dead node takes every connection and user offline',
        )
      }
      if (name === 'connect' || name === 'messages') {
        for (const row of result.rows) {
          assert.equal(typeof row.cpuUsPerOp, 'number', `${name}: CPU per operation of ${row.target}`)
          assert.equal(typeof row.gcUsPerOp, 'number', `${name}: GC pauses per operation of ${row.target}`)
          assert.equal(typeof row.gcMaxMs, 'number', `${name}: longest GC pause of ${row.target}`)
        }
      }
      if (name === 'backlog') {
        const herald = result.rows.find((r) => r.target === 'herald-memory')
        assert.equal(herald?.delivered, 1200, 'Herald delivers the whole backlog')
      }
      const files = readdirSync(out).filter((f) => f.startsWith(`${name}-`))
      assert.ok(files.some((f) => f.endsWith('.svg')))
      const json = JSON.parse(readFileSync(join(out, files.find((f) => f.endsWith('.json'))!), 'utf8')) as {
        rows: unknown[]
        machine: { cpus: number }
      }
      assert.equal(json.rows.length, result.rows.length)
      assert.ok(json.machine.cpus > 0)
    })
  }

  it('herald-split: the access node and the presence service in processes of their own, their CPU counted together', async () => {
    const result = await runBench('connect', {
      mode: 'redis',
      n: 20,
      rates: [100],
      only: ['herald-split', 'aedes'],
      out,
      log: () => {},
      print: false,
    })
    const split = result.rows.filter((r) => r.target === 'herald-redis-split')
    assert.equal(split.length, 2)
    for (const row of split) {
      assert.equal(row.connected, 20)
      // the presence service, in its own process, published every client's online document
      assert.equal(row.presenceSeen, 20)
      assert.equal(typeof row.cpuVsAedes, 'number')
    }
    await assert.rejects(
      runBench('connect', { mode: 'memory', n: 1, only: ['herald-split'], out, log: () => {}, print: false }),
      /herald-split needs --mode redis/,
    )
  })

  for (const name of virtualScenarios()) {
    it(`${name} --virtual holds its connections over in-memory streams in the server process`, async () => {
      const n = 30
      const result = await runBench(name, {
        mode: name === 'idle' ? 'memory' : 'redis',
        n,
        workers: 1,
        virtual: true,
        only: ['herald', 'aedes'],
        out,
        log: () => {},
        print: false,
      })
      if (name === 'idle') {
        assert.deepEqual(
          result.rows.map((r) => [r.target, r.connections, r.failed]),
          [
            ['stubs-only', n, 0],
            ['herald-memory', n, 0],
            ['aedes-memory', n, 0],
          ],
        )
        for (const row of result.rows.slice(1)) assert.equal(typeof row.kibPerConnection, 'number')
      } else {
        assert.ok(result.rows.length > 0)
        for (const row of result.rows) assert.equal(row.connections, n, `${name}: every connection held`)
        if (name === 'resync')
          assert.deepEqual(
            result.rows.map((r) => r.storeComplete),
            ['yes', 'yes'],
          )
        if (name === 'node-death')
          assert.deepEqual(
            result.rows.map((r) => r.allOffline),
            ['yes', 'yes'],
          )
      }
    })
  }

  it('a scenario without a --virtual form says which have one', async () => {
    await assert.rejects(
      runBench('messages', { mode: 'memory', virtual: true, out, log: () => {}, print: false }),
      /messages has no --virtual form; these do: idle, resync, node-death/,
    )
  })

  it('--repeat: every round in full, then per Herald row the median and range of each ratio over the rounds', async () => {
    const { results, summary, file } = await runRounds(
      'connect',
      { ...TINY.connect!, only: ['herald', 'aedes'], out, log: () => {}, print: false },
      3,
    )
    assert.equal(results.length, 3)
    assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), summary)
    // one summary row per Herald row of a round (max and 100/s), each over the 3 rounds
    assert.deepEqual(
      summary.rows.map((r) => [r.target, r.rate, r.rounds]),
      results[0]!.rows.filter((r) => r.target === 'herald-memory').map((r) => [r.target, r.rate, 3]),
    )
    for (const row of summary.rows) {
      const s = row.vsAedes as Spread
      const rounds = results.map((r) =>
        r.rows.find((x) => x.target === 'herald-memory' && x.rate === row.rate),
      )
      assert.deepEqual(
        s.values,
        rounds.map((r) => r?.vsAedes),
      )
      assert.deepEqual(
        [s.min, s.median, s.max],
        [...s.values].sort((a, b) => a - b),
      )
    }
  })

  it('no ratio from a row that left acknowledged QoS 1 messages undelivered (a system falling behind), on either side', () => {
    const row = (
      target: string,
      rate: number | string,
      delivered: number,
      undelivered: number,
      cpu: number,
    ) => ({
      target,
      qos: 1,
      rate,
      deliveredPerSec: delivered,
      undelivered,
      cpuUsPerOp: cpu,
    })
    const result: ScenarioResult = {
      scenario: 'messages',
      params: {},
      notes: [],
      rows: [
        row('herald-redis', 7000, 7000, 0, 140),
        row('aedes-redis', 7000, 7000, 0, 120),
        row('herald-redis', 'max', 15000, 0, 80),
        row('aedes-redis', 'max', 8000, 110000, 130), // accepted 30k/s, delivered 8k/s
        row('herald-redis', 'max2', 9000, 5, 80),
        row('aedes-redis', 'max2', 10000, 0, 60),
      ],
    }
    addRatios(result)
    const [steady, , overloadedBase, , overloaded, base] = result.rows
    assert.equal(steady!.vsAedes, 1)
    assert.equal(steady!.cpuVsAedes, 0.86)
    for (const r of [overloadedBase!, overloaded!, base!]) {
      assert.equal(r.vsAedes, undefined)
      assert.equal(r.cpuVsAedes, undefined)
    }
  })

  it('the summary: medians of ratios (and goal latencies) where there is a baseline, of every measurement where there is none', () => {
    const round = (vs: number, ms: number): ScenarioResult[] => [
      {
        scenario: 'messages',
        params: {},
        notes: [],
        rows: [
          {
            target: 'herald-redis',
            qos: 1,
            rate: 'max',
            deliveredPerSec: 10 * vs,
            e2eP99: ms / 100,
            vsAedes: vs,
          },
          { target: 'aedes-redis', qos: 1, rate: 'max', deliveredPerSec: 10 },
        ],
      },
      {
        scenario: 'resync',
        params: {},
        notes: [],
        rows: [{ target: 'herald-redis', case: 'cold', upToResyncedMs: ms, shortcut: 'none' }],
      },
    ]
    const rounds = [round(0.5, 4000), round(0.7, 3000), round(0.6, 3500), round(0.9, 2000)]
    const messages = summarize(rounds.map((r) => r[0]!))
    assert.deepEqual(messages.rows, [
      {
        target: 'herald-redis',
        qos: 1,
        rate: 'max',
        rounds: 4,
        vsAedes: { median: 0.65, min: 0.5, max: 0.9, values: [0.5, 0.7, 0.6, 0.9] },
        e2eP99: { median: 32.5, min: 20, max: 40, values: [40, 30, 35, 20] },
      },
    ])
    const resync = summarize(rounds.map((r) => r[1]!))
    assert.deepEqual(resync.rows, [
      {
        target: 'herald-redis',
        case: 'cold',
        rounds: 4,
        upToResyncedMs: { median: 3250, min: 2000, max: 4000, values: [4000, 3000, 3500, 2000] },
      },
    ])
  })

  it("the GC probe logs a Node system's collections for the meters, and stopping the system removes the log", async () => {
    const since = Date.now()
    // nodeArgs() is what every Node system under test starts with; this one only makes garbage
    const child = spawn(
      process.execPath,
      [...nodeArgs(), '-e', 'setInterval(() => { for (let i = 0; i < 1e5; i++) globalThis.x = { i } }, 10)'],
      { stdio: 'ignore' },
    )
    try {
      const pauses = await eventually(
        () => {
          const p = gcPausesSince([child.pid!], since)
          return p.count > 0 ? p : undefined
        },
        { timeoutMs: 20_000, what: 'a collection in the log' },
      )
      assert.ok(pauses.totalMs > 0 && pauses.maxMs > 0 && pauses.maxMs <= pauses.totalMs)
      assert.equal(gcPausesSince([child.pid!], Date.now() + 60_000).count, 0, 'only pauses of the window')
    } finally {
      await stopChild(child)
    }
    assert.equal(existsSync(gcLogPath(child.pid!)), false)
  })
})
