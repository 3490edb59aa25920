import type { Duplex } from 'node:stream'
import type { Transport } from '../../services/presence/types.js'

export interface ConnectionMeta {
  transport: Transport
  remoteAddress: string
}

/** What a transport hands every new connection to: the access node's accept function. */
export type Accept = (stream: Duplex, meta: ConnectionMeta) => void

export interface Listener {
  transport: Transport
  port: number
  /** Stops accepting new connections (existing ones stay). */
  close(): Promise<void>
}

/** Certificate and key (PEM contents) for mqtts and wss. */
export interface TlsFiles {
  cert: Buffer
  key: Buffer
}
