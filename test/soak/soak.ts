/**
 * `npm run soak`: clients connect, log out, drop and move between two access nodes while the
 * presence service is SIGKILLed and restarted, Redis (AOF on) is restarted, FLUSHALLed once,
 * and a node is SIGKILLed and restarted. It ends with presence compared to the truth,
 * connection by connection, and a one-line summary. Scale by env:
 *   HERALD_SOAK_SECONDS (60), HERALD_SOAK_USERS (40), HERALD_SOAK_SEED (1)
 */
import { Churn } from '../harness/churn.js'
import { TestCluster } from '../harness/cluster.js'

const seconds = Number(process.env.HERALD_SOAK_SECONDS ?? 60)
const users = Array.from({ length: Number(process.env.HERALD_SOAK_USERS ?? 40) }, (_v, i) => `soak${i}`)
const seed = Number(process.env.HERALD_SOAK_SEED ?? 1)

async function main(): Promise<number> {
  const cluster = await TestCluster.start({ nodes: ['a', 'b'], aof: true })
  const churn = new Churn(cluster, users, ['phone', 'laptop', 'tab'], seed)
  const started = Date.now()
  const faults: string[] = []
  const at = (fraction: number) => started + fraction * seconds * 1000
  const plan: Array<[number, string, () => Promise<void>]> = [
    [
      at(0.2),
      'presence SIGKILL + restart',
      async () => {
        await cluster.killPresence('SIGKILL')
        await churn.run(20)
        await cluster.startPresence()
      },
    ],
    [at(0.4), 'redis restart (AOF)', () => cluster.redis.restart()],
    [at(0.55), 'FLUSHALL', () => cluster.flushall()],
    [
      at(0.7),
      'node b SIGKILL + restart',
      async () => {
        await cluster.kill('b')
        await churn.run(20)
        await cluster.startNode('b')
      },
    ],
  ]
  try {
    while (Date.now() - started < seconds * 1000) {
      await churn.run(10)
      const due = plan.find(([when, name]) => Date.now() >= when && !faults.includes(name))
      if (due) {
        faults.push(due[1])
        await due[2]()
      }
    }
    const settleFrom = Date.now()
    let diff: string | undefined = 'not compared'
    while (Date.now() - settleFrom < 30_000) {
      diff = await churn.compare()
      if (diff === undefined) break
      await new Promise((r) => setTimeout(r, 250))
    }
    const ms = Date.now() - settleFrom
    const verdict =
      diff === undefined
        ? `presence equal to the truth ${ms} ms after the churn stopped`
        : `MISMATCH: ${diff}`
    process.stdout.write(
      `soak: ${seconds}s, ${users.length} users, seed ${seed}, churn ${JSON.stringify(churn.counts)}, ` +
        `faults [${faults.join(', ')}], ${verdict}\n`,
    )
    return diff === undefined && faults.length === plan.length ? 0 : 1
  } finally {
    churn.close()
    await cluster.stop()
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  },
)
