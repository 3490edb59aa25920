/**
 * Connections without sockets, for scales this machine's open-files limit (20,000 per process,
 * which root cannot raise here) keeps TCP from reaching: a stream pair per connection, the
 * server's end handed to the server exactly as a transport hands it a socket, the client's end
 * driven by a minimal MQTT client that sends CONNECT, waits for CONNACK and then stays idle.
 * Everything above the byte stream (packet guard, Aedes, Herald's hooks, tracker, event log)
 * is the real thing; the kernel's socket buffers and the socket objects are what is left out.
 */
import { Duplex } from 'node:stream'
import mqttPacket from 'mqtt-packet'

/** One end of an in-memory byte stream: what it writes, its peer reads. */
class End extends Duplex {
  peer: End | undefined

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.peer?.push(chunk)
    cb()
  }

  /** Corked writes (mqtt-packet writes a packet in pieces) arrive as one chunk, as on a socket. */
  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.peer?.push(Buffer.concat(chunks.map((c) => c.chunk)))
    cb()
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.peer?.push(null)
    cb()
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const peer = this.peer
    this.peer = undefined
    if (peer && !peer.destroyed) peer.destroy()
    cb(err)
  }
}

/** Two connected ends: [server, client]. Destroying one destroys the other. */
export function streamPair(): [Duplex, Duplex] {
  const a = new End()
  const b = new End()
  a.peer = b
  b.peer = a
  return [a, b]
}

export interface VirtualSpec {
  clientId: string
  username: string
  password: string
}

/**
 * Sends CONNECT on the client end and resolves with the CONNACK's return code (-1 when the
 * server closes first). The client end then drops whatever the server sends.
 */
export function virtualConnect(client: Duplex, spec: VirtualSpec, keepalive: number): Promise<number> {
  return new Promise((resolve) => {
    let done = false
    const finish = (code: number) => {
      if (done) return
      done = true
      client.off('data', onData)
      client.resume()
      resolve(code)
    }
    let got = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      // CONNACK: 0x20, remaining length 2, flags, return code
      got = Buffer.concat([got, chunk])
      if (got[0] !== 0x20) finish(-1)
      else if (got.length >= 4) finish(got[3]!)
    }
    client.on('data', onData)
    client.once('close', () => finish(-1))
    client.write(
      mqttPacket.generate({
        cmd: 'connect',
        protocolId: 'MQTT',
        protocolVersion: 4,
        clean: true,
        clientId: spec.clientId,
        keepalive,
        username: spec.username,
        password: Buffer.from(spec.password),
      }),
    )
  })
}

/** A server end that accepts any CONNECT and keeps nothing: the cost of the pairs alone. */
export function nullServer(server: Duplex): void {
  server.once('data', () => server.write(Buffer.from([0x20, 0x02, 0x00, 0x00])))
  server.resume()
}

/**
 * Opens `n` connections, `concurrency` at a time. `spec(i)` may be async (minting a token): it
 * is asked for one connection at a time, so nothing of a spec is kept once its CONNECT is sent.
 */
export async function openVirtual(opts: {
  n: number
  concurrency: number
  keepalive: number
  accept: (server: Duplex) => void
  spec: (i: number) => VirtualSpec | Promise<VirtualSpec>
  /** Client ends of accepted connections, kept so they stay open (and can be closed). */
  into: Duplex[]
}): Promise<{ connected: number; failed: number; elapsedMs: number }> {
  const started = performance.now()
  let next = 0
  let connected = 0
  let failed = 0
  const lane = async () => {
    while (next < opts.n) {
      const i = next++
      const spec = await opts.spec(i)
      const [server, client] = streamPair()
      opts.accept(server)
      const code = await virtualConnect(client, spec, opts.keepalive)
      if (code === 0) {
        connected += 1
        opts.into.push(client)
      } else {
        failed += 1
        client.destroy()
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane))
  return { connected, failed, elapsedMs: performance.now() - started }
}
