/** MQTT clients for tests (mqtt.js), connected as `<userId>/<deviceId>` with a token. */
import { connect as netConnect, type Socket } from 'node:net'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { mintToken } from '../../services/core/auth.js'
import { TEST_SECRET } from './herald.js'

export interface TestClientOptions extends Partial<IClientOptions> {
  token?: string
  /**
   * Runs on the client before it connects: attach `message` listeners here when the server
   * may send something right after CONNACK (a persistent session's queue). mqtt.js emits a
   * PUBLISH that comes in the same read as the CONNACK — and acknowledges it — before code
   * awaiting the connection resumes.
   */
  setup?: (client: MqttClient) => void
}

export async function connectClient(
  url: string,
  userId: string,
  deviceId: string,
  { setup, ...opts }: TestClientOptions = {},
): Promise<MqttClient> {
  const client = mqtt.connect(url, {
    clientId: `${userId}/${deviceId}`,
    // MQTT 3.1.1 [MQTT-3.1.2-22]: no password without a username; Herald wants it to be the sub
    username: userId,
    password: opts.token ?? (await mintToken(TEST_SECRET, userId)),
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...opts,
  })
  setup?.(client)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('connection closed before CONNACK')))
  })
  return client
}

/** Tries to connect and returns the CONNACK return code (0 = accepted). */
export async function connackCode(url: string, opts: IClientOptions): Promise<number> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...opts })
  try {
    return await new Promise<number>((resolve, reject) => {
      client.once('connect', (packet) => resolve(packet.returnCode ?? 0))
      client.once('error', (err: Error & { code?: number | string }) => {
        if (typeof err.code === 'number') resolve(err.code)
        else reject(err)
      })
    })
  } finally {
    client.end(true)
  }
}

/** Collects JSON messages on a topic; `next()` awaits the next one matching a predicate. */
export class Inbox<T = unknown> {
  readonly received: T[] = []
  private waiters: Array<{ pred: (m: T) => boolean; resolve: (m: T) => void }> = []

  constructor(client: MqttClient, topicFilter: (topic: string) => boolean) {
    client.on('message', (topic, payload) => {
      if (!topicFilter(topic)) return
      const msg = JSON.parse(payload.toString()) as T
      this.received.push(msg)
      this.waiters = this.waiters.filter((w) => {
        if (!w.pred(msg)) return true
        w.resolve(msg)
        return false
      })
    })
  }

  /** The next message (from now on) matching `pred`. */
  next(pred: (m: T) => boolean = () => true, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('expected message did not arrive in time')), timeoutMs)
      this.waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
      })
    })
  }

  /** The first message received so far or later matching `pred`. */
  seen(pred: (m: T) => boolean, timeoutMs = 10_000): Promise<T> {
    const found = this.received.find(pred)
    return found ? Promise.resolve(found) : this.next(pred, timeoutMs)
  }
}

/** Ends a client without a DISCONNECT packet: the socket just goes away. */
export function dropSocket(client: MqttClient): void {
  client.stream.destroy()
  client.end(true)
}

/** Waits until the client's socket is closed by the server. */
export function closedByServer(client: MqttClient, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!client.connected && client.stream.destroyed) return resolve()
    const timer = setTimeout(
      () => reject(new Error('server did not close the connection in time')),
      timeoutMs,
    )
    client.stream.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

/** A plain TCP socket to an MQTT listener, for writing bytes by hand (errors are ignored). */
export async function rawSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url)
  const socket = netConnect(Number(port), hostname)
  socket.on('error', () => {})
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return socket
}

/** A well-formed CONNECT of `<userId>/<deviceId>` with its token, as raw bytes. */
export function connectPacket(
  clientId: string,
  token: string,
  keepalive = 30,
  opts: { clean?: boolean } = {},
): Buffer {
  return mqttPacket.generate({
    cmd: 'connect',
    protocolId: 'MQTT',
    protocolVersion: 4,
    clean: opts.clean ?? true,
    clientId,
    keepalive,
    username: clientId.split('/')[0],
    password: Buffer.from(token),
  } as Packet)
}
