/** `herald who <userId>` and `herald stats`: read presence over the HTTP API. */
import type { Command } from 'commander'
import type { PresenceView } from '../../../services/presence/types.js'
import { ago } from '../output.js'
import { bearer, getJson } from './http-client.js'

const DEFAULT_HTTP = process.env.HERALD_HTTP_URL ?? 'http://127.0.0.1:8080'

export function queryCommands(program: Command): void {
  program
    .command('who <userId>')
    .description('show one user: online or not, since when, on which devices')
    .option('--http <url>', 'HTTP API base URL [env HERALD_HTTP_URL]', DEFAULT_HTTP)
    .option(
      '--token <jwt>',
      'bearer token [env HERALD_TOKEN]; default: a service token from the local secret',
    )
    .option('--json', 'print the raw JSON')
    .action(async (userId: string, opts: { http: string; token?: string; json?: boolean }) => {
      const token = await bearer(opts, { userId: 'herald-cli', role: 'service' })
      const view = (await getJson(opts, `/v1/presence/${encodeURIComponent(userId)}`, token)) as PresenceView
      if (opts.json) {
        process.stdout.write(JSON.stringify(view, null, 2) + '\n')
        return
      }
      const state = view.online
        ? `online since ${ago(view.since)}`
        : `offline (${view.reason ?? 'never seen'}), last seen ${ago(view.lastSeen)}`
      process.stdout.write(`${view.userId}: ${state}${view.status ? `, status ${view.status}` : ''}\n`)
      for (const c of view.connectionsDetail) {
        process.stdout.write(
          `  ${c.clientId}  ${c.transport}  ${c.remoteAddress ?? '-'}  node ${c.nodeId}  connected ${ago(c.connectedAt)}\n`,
        )
      }
    })

  program
    .command('stats')
    .description('online users, connections and access nodes')
    .option('--http <url>', 'HTTP API base URL [env HERALD_HTTP_URL]', DEFAULT_HTTP)
    .option(
      '--token <jwt>',
      'service or admin token [env HERALD_TOKEN]; default: minted from the local secret',
    )
    .option('--json', 'print the raw JSON')
    .action(async (opts: { http: string; token?: string; json?: boolean }) => {
      const token = await bearer(opts, { userId: 'herald-cli', role: 'service' })
      const stats = (await getJson(opts, '/v1/stats', token)) as {
        onlineUsers: number
        connections: number
        nodes: Array<{
          nodeId: string
          epoch: number
          connections: number
          lastHeartbeat: number
          state: string
        }>
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(stats, null, 2) + '\n')
        return
      }
      process.stdout.write(`online users ${stats.onlineUsers}, connections ${stats.connections}\n`)
      for (const n of stats.nodes) {
        process.stdout.write(
          `  node ${n.nodeId}  epoch ${n.epoch}  ${n.state}  connections ${n.connections}  heartbeat ${ago(n.lastHeartbeat)}\n`,
        )
      }
    })
}
