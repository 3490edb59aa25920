/**
 * The packet-size guard. Aedes has no maximum packet size: its parser buffers whatever length
 * a client declares (a 256 MB header makes it wait for, and keep, 256 MB). The guard follows
 * the MQTT framing of the byte stream — fixed header, Remaining Length, body — without copying
 * or parsing bodies, and refuses a packet the moment its header declares too many bytes.
 */
import type { Duplex } from 'node:stream'

export type GuardVerdict = { ok: true } | { ok: false; reason: string }

enum State {
  Type,
  Length,
  Body,
}

export class PacketScanner {
  private state = State.Type
  private length = 0
  private multiplier = 1
  private lengthBytes = 0
  private remaining = 0

  constructor(private readonly maxBytes: number) {}

  /** Feeds the next chunk of the byte stream. */
  feed(buf: Uint8Array): GuardVerdict {
    let i = 0
    while (i < buf.length) {
      switch (this.state) {
        case State.Type:
          i += 1
          this.state = State.Length
          this.length = 0
          this.multiplier = 1
          this.lengthBytes = 0
          break
        case State.Length: {
          const byte = buf[i++]!
          this.length += (byte & 0x7f) * this.multiplier
          this.multiplier *= 128
          this.lengthBytes += 1
          if (this.length > this.maxBytes) {
            return {
              ok: false,
              reason: `packet of ${this.length}+ bytes exceeds the ${this.maxBytes}-byte limit`,
            }
          }
          if (byte & 0x80) {
            if (this.lengthBytes >= 4) return { ok: false, reason: 'malformed Remaining Length' }
          } else {
            this.remaining = this.length
            this.state = this.remaining === 0 ? State.Type : State.Body
          }
          break
        }
        case State.Body: {
          const take = Math.min(this.remaining, buf.length - i)
          i += take
          this.remaining -= take
          if (this.remaining === 0) this.state = State.Type
          break
        }
      }
    }
    return { ok: true }
  }
}

/**
 * Installs the guard on a connection stream before Aedes reads it: Aedes pulls bytes with
 * `stream.read()`, so the guard wraps that one method of this one stream instance. On a
 * violation the stream is destroyed with the reason and `onRefuse` is told.
 */
export function guardStream(
  stream: Duplex,
  maxBytes: number,
  onRefuse: (reason: string) => void,
  onActivity?: () => void,
): void {
  const scanner = new PacketScanner(maxBytes)
  const read = stream.read.bind(stream)
  stream.read = (size?: number) => {
    const chunk = read(size) as Buffer | string | null
    if (chunk === null || typeof chunk === 'string') return chunk
    onActivity?.()
    const verdict = scanner.feed(chunk)
    if (!verdict.ok) {
      onRefuse(verdict.reason)
      stream.destroy(new Error(verdict.reason))
      return null
    }
    return chunk
  }
}
