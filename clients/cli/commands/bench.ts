/** `herald bench <scenario>`: see clients/loadgen. */
import type { Command } from 'commander'
import { fail } from '../output.js'

export function benchCommand(program: Command): void {
  program
    .command('bench <scenario>')
    .description(
      'benchmark Herald against bare Aedes (and Mosquitto): connect, churn, idle, detect, messages',
    )
    .action(async () => {
      fail('herald bench is not built yet (load generator issue)')
    })
}
