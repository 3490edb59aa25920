/**
 * The Herald SDK, for Node and browsers (the same code; a bundler maps `node:events` to the
 * `events` package, as clients/web does). See clients/sdk/README.md.
 *
 * ```ts
 * const h = await connect({ url: 'mqtt://127.0.0.1:1883', userId: 'alice', token })
 * h.on('online', (doc) => console.log(doc.userId, 'is online'))
 * await h.watch(['bob'])
 * h.on('message', (m) => console.log(m.from, m.body))
 * const { id, offset } = await h.send('bob', { text: 'hi' })
 * ```
 */
import { HeraldClient } from './client.js'
import type { ConnectOptions } from './types.js'

export { backoffDelay } from './backoff.js'
export { HeraldClient } from './client.js'
export { compareOffsets } from './dedupe.js'
export { defaultDeviceId } from './device-id.js'
export {
  ConnectError,
  HeraldError,
  HttpApiError,
  RejectedError,
  TimeoutError,
  UsageError,
} from './errors.js'
export type {
  ConnectionDetail,
  ConnectOptions,
  HeraldEvents,
  HistoryPage,
  Message,
  PresenceDoc,
  PresenceView,
  Receipt,
  ReceiptStatus,
  SendResult,
} from './types.js'

/** Connects to Herald; see {@link HeraldClient.connect}. */
export function connect(opts: ConnectOptions): Promise<HeraldClient> {
  return HeraldClient.connect(opts)
}
