/** SDK clients against a test Herald, and a way to cut one's socket as a network would. */
import { once } from 'node:events'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ConnectOptions, HeraldClient } from '../../clients/sdk/index.js'
import type { TestHerald } from '../harness/herald.js'

export class SdkPool {
  private readonly open: HeraldClient[] = []
  private n = 0

  constructor(private readonly h: () => TestHerald) {}

  /** A userId no other test of this run uses. */
  user(name: string): string {
    this.n += 1
    return `${name}${this.n}`
  }

  async connect(userId: string, opts: Partial<ConnectOptions> = {}): Promise<HeraldClient> {
    const h = this.h()
    const c = await HeraldClient.connect({
      url: h.mqttUrl,
      httpUrl: h.httpUrl,
      userId,
      token: await h.token(userId),
      deviceIdDir: opts.deviceIdDir ?? (await mkdtemp(join(tmpdir(), 'herald-sdk-'))),
      reconnectMinMs: 50,
      ...opts,
    })
    this.open.push(c)
    return c
  }

  async closeAll(): Promise<void> {
    for (const c of this.open.splice(0)) await c.close().catch(() => {})
  }
}

/** Destroys the client's socket without a DISCONNECT (Herald sees the connection lost). */
export function cutSocket(c: HeraldClient): void {
  ;(c as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy()
}

/** Cuts the socket and resolves once the SDK reconnected and restored everything. */
export async function cutAndWaitBack(c: HeraldClient): Promise<void> {
  const back = once(c, 'reconnect')
  cutSocket(c)
  await back
}
