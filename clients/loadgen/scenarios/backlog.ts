/**
 * backlog: a device is away while N messages (default 10,000) are sent to its user, then comes
 * back. Time from its reconnect until the last message is in the application's hands.
 * Herald: the SDK (persistent session for what the session kept, catch-up by offset for the
 * rest, de-duplicated). Bare brokers: a plain persistent session (everything it queued; a
 * broker with a queue cap — Mosquitto keeps 1,000 by default — delivers only what it kept).
 */
import mqtt, { type MqttClient } from 'mqtt'
import { HeraldClient } from '../../sdk/index.js'
import { now } from '../histogram.js'
import type { Target } from '../targets.js'
import { type Row, round, type ScenarioOptions, type ScenarioResult } from './common.js'

async function plainClient(
  target: Target,
  userId: string,
  deviceId: string,
  clean: boolean,
): Promise<MqttClient> {
  const client = mqtt.connect(target.url, {
    clientId: `${userId}/${deviceId}`,
    username: userId,
    password: await target.token(userId),
    protocolVersion: 4,
    clean,
    reconnectPeriod: 0,
  })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
  })
  return client
}

/** Sends n QoS 1 messages to users/<to>/inbox, 100 in flight. */
async function sendAll(sender: MqttClient, to: string, n: number, run: string): Promise<void> {
  for (let k = 0; k < n; k += 100) {
    const batch: Array<Promise<unknown>> = []
    for (let j = k; j < Math.min(n, k + 100); j++) {
      batch.push(
        sender.publishAsync(`users/${to}/inbox`, JSON.stringify({ id: `${run}-${j}`, body: { n: j } }), {
          qos: 1,
        }),
      )
    }
    await Promise.all(batch)
  }
}

async function until(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!done()) {
    if (Date.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 5))
  }
  return true
}

export async function backlogScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const n = opts.n
  for (const target of targets) {
    const run = `b${Date.now().toString(36)}`
    const userId = `${run}u`
    const sender = await plainClient(target, `${run}s`, 'sender', true)
    let received = 0
    let reconnectAt = 0
    let lastAt = 0
    if (target.kind === 'herald') {
      const token = await target.token(userId)
      const device = { url: target.url, userId, deviceId: 'away', token }
      const first = await HeraldClient.connect(device)
      await first.close()
      await sendAll(sender, userId, n, run)
      reconnectAt = now()
      const back = await HeraldClient.connect({ ...device, catchUpAfter: '' })
      back.on('message', () => {
        received += 1
        lastAt = now()
      })
      await until(() => received >= n, 120_000)
      await back.close()
    } else {
      const first = await plainClient(target, userId, 'away', false)
      await first.subscribeAsync(`users/${userId}/inbox`, { qos: 1 })
      await first.endAsync()
      await sendAll(sender, userId, n, run)
      reconnectAt = now()
      const back = mqtt.connect(target.url, {
        clientId: `${userId}/away`,
        username: userId,
        password: await target.token(userId),
        protocolVersion: 4,
        clean: false,
        reconnectPeriod: 0,
        connectTimeout: 60_000, // a broker may take long to restore a large session
      })
      let refused: Error | undefined
      back.on('error', (err) => {
        refused = err // e.g. no CONNACK in time while the broker restores a large session
      })
      const seen = new Set<string>()
      back.on('message', (_t, payload) => {
        const id = (JSON.parse(payload.toString()) as { id: string }).id
        if (seen.has(id)) return
        seen.add(id)
        received += 1
        lastAt = now()
      })
      await new Promise<void>((resolve) => {
        back.once('connect', () => resolve())
        back.once('error', () => resolve())
      })
      // a capped queue never reaches n: stop when nothing arrives for 2 s
      let last = -1
      let quietSince = Date.now()
      await until(() => {
        if (received !== last) {
          last = received
          quietSince = Date.now()
        }
        return received >= n || refused !== undefined || Date.now() - quietSince > 2000
      }, 120_000)
      if (refused) process.stderr.write(`backlog: ${target.name}: ${refused.message}\n`)
      back.end(true)
    }
    sender.end(true)
    rows.push({
      target: target.name,
      backlog: n,
      delivered: received,
      deliverMs: round(lastAt - reconnectAt),
      perSec: round(received / Math.max(0.001, (lastAt - reconnectAt) / 1000)),
    })
  }
  return {
    scenario: 'backlog',
    params: { backlog: n },
    rows,
    notes: [
      'deliverMs: reconnect -> last message in the application (Herald: session + catch-up via the SDK, de-duplicated)',
    ],
  }
}
