/** `herald watch`, `send`, `tail`: the CLI as an MQTT client (mqtt.js). */
import { randomBytes } from 'node:crypto'
import type { Command } from 'commander'
import mqtt, { type MqttClient } from 'mqtt'
import { mintToken } from '../../../services/core/auth.js'
import { isIdentifier } from '../../../services/core/identity.js'
import { topics } from '../../../services/core/topics.js'
import type { PresenceDoc } from '../../../services/presence/types.js'
import { explain, fail } from '../output.js'
import { localSecret } from './token.js'

const DEFAULT_URL = process.env.HERALD_MQTT_URL ?? 'mqtt://127.0.0.1:1883'

interface ClientOpts {
  url: string
  as: string
  token?: string
  device?: string
}

function withClientOptions(cmd: Command, defaultAs: string): Command {
  return cmd
    .option('--url <url>', 'MQTT URL (mqtt://, ws://) [env HERALD_MQTT_URL]', DEFAULT_URL)
    .option('--as <userId>', 'who to connect as', defaultAs)
    .option('--device <deviceId>', 'deviceId (default: cli-<random>)')
    .option('--token <jwt>', 'token for --as [env HERALD_TOKEN]; default: minted from the local secret')
}

async function connect(opts: ClientOpts): Promise<MqttClient> {
  if (!isIdentifier(opts.as)) fail('--as must match [A-Za-z0-9._-]{1,64}')
  const token =
    opts.token ?? process.env.HERALD_TOKEN ?? (await mintToken(await localSecret(), opts.as, { ttl: '12h' }))
  const device = opts.device ?? `cli-${randomBytes(3).toString('hex')}`
  const client = mqtt.connect(opts.url, {
    clientId: `${opts.as}/${device}`,
    username: opts.as,
    password: token,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  })
  await new Promise<void>((resolve) => {
    client.once('connect', () => resolve())
    client.once('error', (err: Error & { code?: number | string }) => {
      if (err.code === 4)
        fail('connection refused: bad or expired token (CONNACK 4) — mint one with `herald token`')
      if (err.code === 5)
        fail('connection refused: not authorized (CONNACK 5) — does --as match the token subject?')
      fail(explain(err, `the MQTT listener at ${opts.url}`))
    })
  })
  return client
}

const color = (code: number, s: string) => (process.stdout.isTTY ? `\u001b[${code}m${s}\u001b[0m` : s)

export function mqttCommands(program: Command): void {
  withClientOptions(
    program.command('watch <userIds...>').description('live presence of users (online/offline/status edges)'),
    'herald-cli',
  )
    .option('--json', 'one JSON presence document per line')
    .action(async (userIds: string[], opts: ClientOpts & { json?: boolean }) => {
      for (const id of userIds) if (!isIdentifier(id)) fail(`not a userId: ${JSON.stringify(id)}`)
      const client = await connect(opts)
      client.on('message', (_topic, payload) => {
        const doc = JSON.parse(payload.toString()) as PresenceDoc
        if (opts.json) {
          process.stdout.write(JSON.stringify(doc) + '\n')
          return
        }
        const when = new Date().toISOString().slice(11, 23)
        const state = doc.online ? color(32, 'online ') : color(31, 'offline')
        const extra = doc.online
          ? doc.status
            ? `status ${doc.status}`
            : ''
          : `reason ${doc.reason ?? 'never seen'}`
        process.stdout.write(`${when}  ${state}  ${doc.userId}  ${extra}\n`)
      })
      client.subscribe(
        userIds.map((id) => topics.presence(id)),
        { qos: 0 },
        (err, granted) => {
          if (err) fail(explain(err, 'subscribe'))
          for (const g of granted ?? [])
            if (g.qos === 128) process.stderr.write(`herald: not allowed to watch ${g.topic}\n`)
        },
      )
    })

  withClientOptions(
    program.command('send <userId> <text>').description("send a message to a user's inbox (QoS 1)"),
    'herald-cli',
  )
    .option('--id <id>', 'message id (default: random); re-sending the same id is de-duplicated')
    .action(async (to: string, text: string, opts: ClientOpts & { id?: string }) => {
      if (!isIdentifier(to)) fail(`not a userId: ${JSON.stringify(to)}`)
      const client = await connect(opts)
      const id = opts.id ?? randomBytes(8).toString('hex')
      await client.publishAsync(topics.inbox(to), JSON.stringify({ id, body: { text } }), { qos: 1 })
      process.stdout.write(`sent ${id} to ${to}\n`)
      await client.endAsync()
    })

  withClientOptions(program.command('tail').description('print messages to me as they arrive'), 'herald-cli')
    .option('--json', 'one JSON envelope per line')
    .action(async (opts: ClientOpts & { json?: boolean }) => {
      const client = await connect(opts)
      client.on('message', (topic, payload) => {
        if (opts.json) {
          process.stdout.write(payload.toString() + '\n')
          return
        }
        const env = JSON.parse(payload.toString()) as {
          from?: string
          id?: string
          body?: unknown
          status?: string
        }
        const when = new Date().toISOString().slice(11, 23)
        process.stdout.write(
          `${when}  ${topic.split('/')[2]}  ${env.from ?? ''}  ${env.id ?? ''}  ${JSON.stringify(env.body ?? env.status)}\n`,
        )
      })
      await client.subscribeAsync(
        [topics.inbox(opts.as), `users/${opts.as}/devices/+`, topics.receipts(opts.as)],
        { qos: 1 },
      )
      process.stderr.write(`tailing messages to ${opts.as} (Ctrl-C to stop)\n`)
    })
}
