/** `herald watch`, `send`, `tail`: the CLI as an MQTT client, on the SDK (clients/sdk). */
import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import { mintToken } from '../../../services/core/auth.js'
import { isIdentifier } from '../../../services/core/identity.js'
import { ConnectError, HeraldError, RejectedError } from '../../sdk/errors.js'
import type { HeraldClient, PresenceDoc } from '../../sdk/index.js'
import { ago, clock, explain, fail, paint, withProgress } from '../output.js'
import { localSecret } from './token.js'

const DEFAULT_URL = process.env.HERALD_MQTT_URL ?? 'mqtt://127.0.0.1:1883'
const DEFAULT_HTTP = process.env.HERALD_HTTP_URL ?? 'http://127.0.0.1:8080'

interface ClientOpts {
  url: string
  http: string
  as: string
  token?: string
  device?: string
}

function withClientOptions(cmd: Command, defaultAs: string): Command {
  return cmd
    .option('--url <url>', 'MQTT URL (mqtt://, mqtts://, ws://…/mqtt) [env HERALD_MQTT_URL]', DEFAULT_URL)
    .option('--http <url>', 'HTTP API base URL, for offsets [env HERALD_HTTP_URL]', DEFAULT_HTTP)
    .option('--as <userId>', 'who to connect as', defaultAs)
    .option(
      '--device <deviceId>',
      'deviceId; given = a persistent session (default: cli-<random>, clean session)',
    )
    .option('--token <jwt>', 'token for --as [env HERALD_TOKEN]; default: minted from the local secret')
}

/** What a refused or failed connection means, and what to do about it. */
function connectAdvice(err: unknown, opts: ClientOpts): string {
  if (err instanceof ConnectError) {
    switch (err.code) {
      case 'bad-token':
        return `Herald refused the token (CONNACK 4: bad or expired) — mint a new one with \`herald token ${opts.as}\`, or check HERALD_AUTH_SECRET is the one Herald uses`
      case 'not-authorized':
        return `Herald refused the connection (CONNACK 5: not authorized) — is the token's subject ${opts.as} (--as)? Revoked or rate limited tokens get this too`
      case 'bad-client-id':
        return 'Herald refused the client id (CONNACK 2) — --as and --device must match [A-Za-z0-9._-]{1,64}'
      case 'unreachable':
        return explain(err.cause ?? err, "Herald's MQTT listener", opts.url, '--url or HERALD_MQTT_URL')
    }
  }
  return explain(err, "Herald's MQTT listener", opts.url, '--url or HERALD_MQTT_URL')
}

async function connect(opts: ClientOpts, catchUpAfter?: string): Promise<HeraldClient> {
  if (!isIdentifier(opts.as)) fail('--as must match [A-Za-z0-9._-]{1,64}')
  if (opts.device !== undefined && !isIdentifier(opts.device))
    fail('--device must match [A-Za-z0-9._-]{1,64}')
  const token =
    opts.token ?? process.env.HERALD_TOKEN ?? (await mintToken(await localSecret(), opts.as, { ttl: '12h' }))
  // the SDK (and MQTT.js) loads only for the commands that connect: the others start faster
  const { HeraldClient } = await import('../../sdk/index.js')
  try {
    return await withProgress(
      `connecting to ${opts.url} as ${opts.as}`,
      HeraldClient.connect({
        url: opts.url,
        httpUrl: opts.http,
        userId: opts.as,
        token,
        deviceId: opts.device ?? `cli-${randomBytes(3).toString('hex')}`,
        cleanSession: opts.device === undefined,
        mqtt: { connectTimeout: 5000 },
        ...(catchUpAfter !== undefined ? { catchUpAfter } : {}),
      }),
    )
  } catch (err) {
    fail(connectAdvice(err, opts))
  }
}

function describe(kind: 'online' | 'offline' | 'status', doc: PresenceDoc): string {
  const when = paint.dim(clock())
  const who = paint.bold(doc.userId)
  if (kind === 'offline') {
    const why = doc.since ? `${doc.reason ?? 'offline'}, last seen ${ago(doc.lastSeen)}` : 'never seen'
    return `${when}  ${paint.red('● offline')}  ${who}  ${paint.dim(why)}`
  }
  const away = doc.status !== undefined && doc.status !== 'available'
  const dot = away ? paint.yellow(`● ${doc.status}`) : paint.green('● online ')
  const since = `since ${clock(doc.since)}`
  const meta = doc.meta ? `  ${JSON.stringify(doc.meta)}` : ''
  return `${when}  ${dot}  ${who}  ${paint.dim(kind === 'status' ? `status ${doc.status ?? 'cleared'}${meta}` : since)}`
}

export function mqttCommands(program: Command): void {
  withClientOptions(
    program
      .command('watch <userIds...>')
      .description('live presence of users: online, offline and status changes, with timestamps'),
    'herald-cli',
  )
    .option('--json', 'one JSON line per change: {"event","ts",...presence document}')
    .action(async (userIds: string[], opts: ClientOpts & { json?: boolean }) => {
      for (const id of userIds) if (!isIdentifier(id)) fail(`not a userId: ${JSON.stringify(id)}`)
      const client = await connect(opts)
      for (const kind of ['online', 'offline', 'status'] as const) {
        client.on(kind, (doc) => {
          process.stdout.write(
            opts.json
              ? `${JSON.stringify({ event: kind, ts: Date.now(), ...doc })}\n`
              : `${describe(kind, doc)}\n`,
          )
        })
      }
      client.on('disconnect', () => process.stderr.write('herald: connection lost, reconnecting…\n'))
      client.on('reconnect', () => process.stderr.write('herald: reconnected\n'))
      try {
        await client.watch(userIds)
      } catch (err) {
        fail(`${(err as Error).message} — the visibility policy hides them from ${opts.as}`)
      }
      if (!opts.json) process.stderr.write(`watching ${userIds.join(', ')} (Ctrl-C to stop)\n`)
    })

  withClientOptions(
    program
      .command('send <userId> <text>')
      .description("send a message to a user's inbox; prints its id and offset"),
    'herald-cli',
  )
    .option('--id <id>', 'message id (default: random); re-sending the same id is de-duplicated')
    .option('--type <type>', 'message type (≤ 64 characters)')
    .option('--json', 'print {"id","to","offset"}')
    .action(
      async (to: string, text: string, opts: ClientOpts & { id?: string; type?: string; json?: boolean }) => {
        if (!isIdentifier(to)) fail(`not a userId: ${JSON.stringify(to)}`)
        if (opts.id !== undefined && !isIdentifier(opts.id)) fail('--id must match [A-Za-z0-9._-]{1,64}')
        const client = await connect(opts)
        try {
          const sent = await withProgress(
            `sending to ${to}`,
            client.send(
              to,
              { text },
              { ...(opts.id ? { id: opts.id } : {}), ...(opts.type ? { type: opts.type } : {}) },
            ),
          )
          process.stdout.write(
            opts.json
              ? `${JSON.stringify(sent)}\n`
              : `sent ${sent.id} to ${to}${sent.offset ? ` at offset ${sent.offset}` : ''}\n`,
          )
        } catch (err) {
          if (err instanceof RejectedError) fail(`Herald refused the message (${err.code}): ${err.message}`)
          fail(err instanceof HeraldError ? err.message : String(err))
        } finally {
          await client.close()
        }
      },
    )

  withClientOptions(
    program.command('tail').description('print messages and receipts to me as they arrive'),
    'herald-cli',
  )
    .option('--json', 'one JSON line per message or receipt: {"kind":"message"|"receipt",...}')
    .option('--after <offset>', 'first print the history after this offset (0 = all of it)')
    .action(async (opts: ClientOpts & { json?: boolean; after?: string }) => {
      // the history after --after comes first, de-duplicated against what arrives live
      const client = await connect(opts, opts.after)
      client.on('message', (m) => {
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ kind: 'message', ...m })}\n`)
          return
        }
        const body =
          typeof m.body === 'object' && m.body && 'text' in m.body
            ? String(m.body.text)
            : JSON.stringify(m.body)
        process.stdout.write(
          `${paint.dim(clock(m.ts))}  ${paint.bold(m.from)}  ${body}  ${paint.dim(`${m.id} @ ${m.offset ?? '?'}`)}\n`,
        )
      })
      client.on('receipt', (r) => {
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ kind: 'receipt', ...r })}\n`)
          return
        }
        const what = r.status === 'rejected' ? paint.red(`rejected: ${r.reason ?? ''}`) : r.status
        process.stdout.write(
          `${paint.dim(clock(r.ts))}  receipt  ${r.id}  ${what}  ${paint.dim(`by ${r.by}`)}\n`,
        )
      })
      process.stderr.write(`tailing messages to ${opts.as} (Ctrl-C to stop)\n`)
    })
}
