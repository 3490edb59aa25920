/** `herald bench <scenario>`: clients/loadgen/bench.ts does the work. */
import type { Command } from 'commander'
import type { BenchOptions } from '../../loadgen/bench.js'
import { isScenarioName, SCENARIO_NAMES, VIRTUAL_SCENARIOS } from '../../loadgen/scenario-names.js'
import { fail } from '../output.js'

export function benchCommand(program: Command): void {
  program
    .command('bench <scenario>')
    .description(`benchmark Herald against bare Aedes and Mosquitto in one run: ${SCENARIO_NAMES.join(', ')}`)
    .option(
      '--mode <mode>',
      'memory, or redis (Herald and Aedes with the Redis plugins; starts its own redis-server)',
      'memory',
    )
    .option(
      '-n, --clients <n>',
      'scale: clients (connect, churn, idle, detect), subscribers (messages), messages waiting (backlog) or connections on the node (resync, node-death: Herald alone, Redis, separate processes)',
    )
    .option('--rates <list>', 'fixed rates per second, comma separated (connect, messages)')
    .option('--duration <ms>', 'how long each timed run lasts (churn, messages)')
    .option('--workers <n>', 'load worker processes')
    .option('--qos <list>', 'QoS levels to run, comma separated: 1, 0 or 1,0 (messages)')
    .option(
      '--only <list>',
      'systems to run: herald,aedes,mosquitto; herald-split (Redis mode): access node and presence service in processes of their own',
    )
    .option('--out <dir>', 'where JSON and SVG results go', 'bench-results')
    .option(
      '--repeat <n>',
      'run it n times (Herald and its baselines alternating) and print the median and range of every ratio',
    )
    .option(
      '--virtual',
      `connections over in-memory streams in the server's own process, for N past the open-files limit (${VIRTUAL_SCENARIOS.join(', ')})`,
    )
    .action(
      async (
        scenario: string,
        opts: {
          mode: string
          clients?: string
          rates?: string
          duration?: string
          workers?: string
          only?: string
          qos?: string
          out: string
          virtual?: boolean
          repeat?: string
        },
      ) => {
        if (!isScenarioName(scenario))
          fail(`unknown scenario ${scenario}; one of ${SCENARIO_NAMES.join(', ')}`)
        if (opts.mode !== 'memory' && opts.mode !== 'redis') fail('--mode must be memory or redis')
        const num = (v: string | undefined, name: string) => {
          if (v === undefined) return undefined
          const n = Number(v)
          if (!Number.isFinite(n) || n <= 0) fail(`${name} must be a positive number`)
          return n
        }
        const qos = opts.qos?.split(',').map((q) => {
          if (q !== '0' && q !== '1') fail('--qos must list 0 and/or 1')
          return Number(q) as 0 | 1
        })
        const rounds = num(opts.repeat, '--repeat') ?? 1
        if (!Number.isInteger(rounds)) fail('--repeat must be a whole number')
        const bench: BenchOptions = {
          mode: opts.mode,
          n: num(opts.clients, '--clients'),
          rates: opts.rates?.split(',').map((r) => num(r, '--rates')!),
          durationMs: num(opts.duration, '--duration'),
          workers: num(opts.workers, '--workers'),
          only: opts.only?.split(','),
          qos,
          out: opts.out,
          virtual: opts.virtual === true,
        }
        // the load generator loads only when a bench runs: the other commands start faster
        const { runBench, runRounds } = await import('../../loadgen/bench.js')
        if (rounds > 1) await runRounds(scenario, bench, rounds)
        else await runBench(scenario, bench)
        process.exit(0)
      },
    )
}
