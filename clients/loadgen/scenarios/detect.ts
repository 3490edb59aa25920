/**
 * detect: clients that go silent (CONNECT with keepalive k, then nothing — no PINGREQ) and how
 * long until they are declared gone: Herald's offline document (reason keepalive-timeout), or
 * the server closing the socket for bare brokers. MQTT allows 1.5 x keepalive.
 */
import { connect as netConnect, type Socket } from 'node:net'
import mqttPacket from 'mqtt-packet'
import { newHistogram, now, recordMs, summary } from '../histogram.js'
import type { Target } from '../targets.js'
import { PresenceObserver, type Row, type ScenarioOptions, type ScenarioResult, specsFor } from './common.js'

const KEEPALIVE_S = 2

async function silentClient(
  url: string,
  clientId: string,
  username: string,
  password: string,
): Promise<{ socket: Socket; connackAt: number; closed: Promise<number> }> {
  const { hostname, port } = new URL(url)
  const socket = netConnect(Number(port), hostname)
  socket.on('error', () => {})
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(now())))
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  const connack = new Promise<number>((resolve, reject) => {
    parser.on('packet', (p) =>
      p.cmd === 'connack' && p.returnCode === 0 ? resolve(now()) : reject(new Error('refused')),
    )
  })
  socket.on('data', (b) => parser.parse(b))
  await new Promise<void>((r) => socket.once('connect', () => r()))
  socket.write(
    mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId,
      keepalive: KEEPALIVE_S,
      username,
      password: Buffer.from(password),
    }),
  )
  return { socket, connackAt: await connack, closed }
}

export async function detectScenario(targets: Target[], opts: ScenarioOptions): Promise<ScenarioResult> {
  const rows: Row[] = []
  const n = Math.max(1, Math.min(opts.n, 1000))
  for (const target of targets) {
    const specs = await specsFor(target, 'silent', n)
    const observer =
      target.kind === 'herald'
        ? await PresenceObserver.start(
            target,
            specs.map((s) => s.userId),
          )
        : undefined
    try {
      const clients = await Promise.all(
        specs.map((s) => silentClient(target.url, s.clientId, s.userId, s.password)),
      )
      const detect = newHistogram()
      if (observer) {
        await observer.until(() => observer.offline.size >= n, KEEPALIVE_S * 1500 + 15_000)
        clients.forEach((c, i) => {
          const off = observer.offline.get(specs[i]!.userId)
          if (off?.doc.reason === 'keepalive-timeout') recordMs(detect, off.at - c.connackAt)
        })
      } else {
        const closedAt = await Promise.all(
          clients.map((c) =>
            Promise.race([
              c.closed,
              new Promise<number>((r) => setTimeout(() => r(0), KEEPALIVE_S * 1500 + 15_000)),
            ]),
          ),
        )
        closedAt.forEach((at, i) => {
          if (at > 0) recordMs(detect, at - clients[i]!.connackAt)
        })
      }
      for (const c of clients) c.socket.destroy()
      const d = summary(detect)
      rows.push({
        target: target.name,
        clients: n,
        detected: d.count,
        keepaliveS: KEEPALIVE_S,
        allowedMs: KEEPALIVE_S * 1500,
        p50Ms: d.p50,
        p99Ms: d.p99,
        maxMs: d.max,
      })
    } finally {
      observer?.close()
    }
  }
  return {
    scenario: 'detect',
    params: { n, keepaliveS: KEEPALIVE_S },
    rows,
    notes: [
      'Herald: CONNACK -> offline document (keepalive-timeout) at a watcher; bare brokers: CONNACK -> socket closed by the server',
    ],
  }
}
