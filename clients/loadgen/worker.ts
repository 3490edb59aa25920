/**
 * A load worker: a child process holding a share of the bench's MQTT clients (mqtt.js), so the
 * generator's own event loop is not the limit. It obeys WorkerCommands over IPC and answers
 * with WorkerReplies carrying compressed latency histograms.
 */
import { createConnection } from 'node:net'
import { MqttClient } from 'mqtt'
import { encode, newHistogram, now, recordMs } from './histogram.js'
import type { ClientSpec, WorkerCommand, WorkerReply } from './protocol.js'

interface Held {
  spec: ClientSpec
  client: MqttClient
}

const held: Held[] = []
let received = 0
const e2e = newHistogram()

function reply(msg: WorkerReply): void {
  process.send?.(msg)
}

function dial(
  url: string,
  spec: ClientSpec,
  localAddress: string | undefined,
  keepalive: number,
  clean: boolean,
) {
  const u = new URL(url)
  const client = new MqttClient(
    () => {
      const socket = createConnection({ host: u.hostname, port: Number(u.port), localAddress })
      socket.setNoDelay(true)
      return socket
    },
    {
      protocolVersion: 4,
      clientId: spec.clientId,
      username: spec.userId,
      password: spec.password,
      keepalive,
      clean,
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      resubscribe: false,
    },
  )
  client.on('error', () => {})
  client.on('message', (_topic, payload) => {
    received += 1
    const sentAt = sentAtOf(payload)
    if (sentAt) recordMs(e2e, now() - sentAt)
  })
  return client
}

/** The send time the publisher put in the payload: `{..."body":{"t":<ms>}}` or `{"t":<ms>}`. */
function sentAtOf(payload: Buffer): number | undefined {
  try {
    const doc = JSON.parse(payload.toString()) as { t?: number; body?: { t?: number } }
    return doc.body?.t ?? doc.t
  } catch {
    return undefined
  }
}

async function open(cmd: Extract<WorkerCommand, { op: 'open' }>): Promise<void> {
  const started = now()
  const connack = newHistogram()
  const connackAt: Record<string, number> = {}
  let failed = 0
  const failures: Record<string, number> = {}
  let next = 0
  const interval = cmd.rate > 0 ? 1000 / cmd.rate : 0
  const one = async (i: number) => {
    const spec = cmd.clients[i]!
    if (interval > 0) {
      const due = started + i * interval
      const wait = due - now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
    const t0 = now()
    const local =
      cmd.localAddresses.length > 0 ? cmd.localAddresses[i % cmd.localAddresses.length] : undefined
    const client = dial(cmd.url, spec, local, cmd.keepalive, cmd.clean)
    let why = 'closed before CONNACK'
    const ok = await new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true))
      client.once('error', (e) => {
        why = (e as NodeJS.ErrnoException).code ?? e.message
      })
      client.once('close', () => resolve(false))
    })
    if (!ok) {
      failed += 1
      failures[why] = (failures[why] ?? 0) + 1
      client.end(true)
      return
    }
    const t1 = now()
    recordMs(connack, t1 - t0)
    connackAt[spec.clientId] = t1
    held.push({ spec, client })
    if (cmd.subscribeInbox) await client.subscribeAsync(`users/${spec.userId}/inbox`, { qos: 1 })
  }
  const lanes = Array.from({ length: Math.max(1, cmd.concurrency) }, async () => {
    while (next < cmd.clients.length) await one(next++)
  })
  await Promise.all(lanes)
  reply({ op: 'opened', connack: encode(connack), connackAt, failed, failures, elapsedMs: now() - started })
}

async function publish(cmd: Extract<WorkerCommand, { op: 'publish' }>): Promise<void> {
  const started = now()
  const ack = newHistogram()
  let sent = 0
  let acked = 0
  const pending: Array<Promise<void>> = []
  const interval = 1000 / cmd.rate
  const publishers = held.map((h) => h.client)
  // ids unique per run: Herald de-duplicates (from, id), a repeated id is not delivered again
  const run = `${process.pid}-${Math.floor(started)}`
  if (publishers.length === 0) throw new Error('no clients to publish from')
  for (let i = 0; now() - started < cmd.durationMs; i++) {
    const due = started + i * interval
    const wait = due - now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const client = publishers[i % publishers.length]!
    const to = cmd.targets[i % cmd.targets.length]!
    const t0 = now()
    const payload = JSON.stringify({ id: `${run}-${i}`, body: { t: t0 } })
    sent += 1
    pending.push(
      client.publishAsync(`users/${to}/inbox`, payload, { qos: cmd.qos }).then(
        () => {
          acked += 1
          if (cmd.qos === 1) recordMs(ack, now() - t0)
        },
        () => {},
      ),
    )
    if (pending.length > 2000) await Promise.all(pending.splice(0, 1000))
  }
  await Promise.all(pending)
  reply({ op: 'published', sent, acked, ack: encode(ack), elapsedMs: now() - started })
}

async function churn(cmd: Extract<WorkerCommand, { op: 'churn' }>): Promise<void> {
  let a = cmd.seed >>> 0
  const random = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), a | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const started = now()
  const counts = { connects: 0, disconnects: 0, drops: 0, failed: 0 }
  const specs = held.map((h) => h.spec)
  const live = new Map<string, MqttClient>(held.map((h) => [h.spec.clientId, h.client]))
  held.length = 0
  const lanes = Array.from({ length: 20 }, async (_v, lane) => {
    while (now() - started < cmd.durationMs) {
      const spec = specs[Math.floor(random() * specs.length)]!
      const current = live.get(spec.clientId)
      if (current) {
        live.delete(spec.clientId)
        if (random() < 0.5) {
          await current.endAsync().catch(() => {})
          counts.disconnects += 1
        } else {
          current.stream.destroy()
          current.end(true)
          counts.drops += 1
        }
      } else {
        const local =
          cmd.localAddresses.length > 0 ? cmd.localAddresses[lane % cmd.localAddresses.length] : undefined
        const client = dial(cmd.url, spec, local, 60, true)
        const ok = await new Promise<boolean>((resolve) => {
          client.once('connect', () => resolve(true))
          client.once('close', () => resolve(false))
        })
        if (ok) {
          live.set(spec.clientId, client)
          counts.connects += 1
        } else {
          counts.failed += 1
          client.end(true)
        }
      }
    }
  })
  await Promise.all(lanes)
  for (const [clientId, client] of live)
    held.push({ spec: specs.find((s) => s.clientId === clientId)!, client })
  reply({ op: 'churned', ...counts, elapsedMs: now() - started })
}

async function close(): Promise<void> {
  await Promise.all(held.splice(0).map((h) => h.client.endAsync(true).catch(() => {})))
  reply({ op: 'closed' })
}

process.on('message', (cmd: WorkerCommand) => {
  const run = async () => {
    switch (cmd.op) {
      case 'open':
        return open(cmd)
      case 'publish':
        return publish(cmd)
      case 'collect':
        reply({ op: 'collected', received, e2e: encode(e2e) })
        received = 0
        e2e.reset()
        return
      case 'churn':
        return churn(cmd)
      case 'close':
        return close()
    }
  }
  run().catch((err: Error) => reply({ op: 'error', message: err.message }))
})

process.on('disconnect', () => process.exit(0))
