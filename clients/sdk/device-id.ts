/**
 * A deviceId when the caller gives none: stable per device, distinct per browser tab, so two tabs
 * or two devices of one user never share a clientId (`<userId>/<deviceId>`) and take each other over.
 * - Browser: sessionStorage (one per tab; survives a reload of that tab). A duplicated tab
 *   inherits a copy of sessionStorage, so a kept id is first claimed on a BroadcastChannel: if
 *   a live tab of this origin answers that it holds the id, this tab takes a new one.
 * - Node: a file `<dir>/<userId>` (default dir `~/.herald/devices`), created once with mode 0600.
 */
const IDENTIFIER = /^[A-Za-z0-9._-]{1,64}$/

function randomId(prefix: string): string {
  return `${prefix}-${globalThis.crypto.randomUUID().replaceAll('-', '').slice(0, 12)}`
}

interface TabStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
}

function tabStorage(): TabStorage | undefined {
  const g = globalThis as { sessionStorage?: TabStorage }
  try {
    return g.sessionStorage
  } catch {
    return undefined // storage disabled by the browser
  }
}

const CHANNEL = 'herald-device-ids'
/** How long a kept id's claim waits for another tab to object, ms. */
const CLAIM_MS = 150

interface Channel {
  postMessage(data: unknown): void
  close(): void
  onmessage: ((e: { data: unknown }) => void) | null
}
type ChannelCtor = new (name: string) => Channel

function channelCtor(): ChannelCtor | undefined {
  return (globalThis as unknown as { BroadcastChannel?: ChannelCtor }).BroadcastChannel
}

/** True when another live tab answers that it uses `id`. */
async function heldByAnotherTab(id: string): Promise<boolean> {
  const Ctor = channelCtor()
  if (!Ctor) return false
  const channel = new Ctor(CHANNEL)
  try {
    return await new Promise<boolean>((resolve) => {
      channel.onmessage = (e) => {
        const m = e.data as { held?: string }
        if (m.held === id) resolve(true)
      }
      channel.postMessage({ claim: id })
      setTimeout(() => resolve(false), CLAIM_MS)
    })
  } finally {
    channel.close()
  }
}

/**
 * In a browser: answers other tabs' claims of `id` while this client lives. Returns the
 * function that stops answering (call it on close). A no-op outside browsers.
 */
export function defendTabDevice(id: string): () => void {
  const Ctor = channelCtor()
  if (!Ctor || !tabStorage()) return () => {}
  const channel = new Ctor(CHANNEL)
  channel.onmessage = (e) => {
    if ((e.data as { claim?: string }).claim === id) channel.postMessage({ held: id })
  }
  return () => channel.close()
}

export async function defaultDeviceId(userId: string, dir?: string): Promise<string> {
  const storage = tabStorage()
  if (storage) {
    const key = `herald-device:${userId}`
    const kept = storage.getItem(key)
    if (kept && IDENTIFIER.test(kept) && !(await heldByAnotherTab(kept))) return kept
    const id = randomId('web')
    storage.setItem(key, id)
    return id
  }
  // Node: these imports are never reached in a browser (the bundle leaves them external)
  const fs = await import('node:fs/promises')
  const os = await import('node:os')
  const folder = dir ?? `${os.homedir()}/.herald/devices`
  const file = `${folder}/${userId}`
  try {
    const kept = (await fs.readFile(file, 'utf8')).trim()
    if (IDENTIFIER.test(kept)) return kept
  } catch {
    // no file yet
  }
  const id = randomId(
    os
      .hostname()
      .replace(/[^A-Za-z0-9._-]/g, '')
      .slice(0, 24) || 'node',
  )
  await fs.mkdir(folder, { recursive: true, mode: 0o700 })
  try {
    // `wx`: two processes starting together agree on the first one's id
    await fs.writeFile(file, `${id}\n`, { mode: 0o600, flag: 'wx' })
    return id
  } catch {
    const kept = (await fs.readFile(file, 'utf8')).trim()
    if (IDENTIFIER.test(kept)) return kept
    throw new Error(`${file} holds no valid deviceId: delete it or pass deviceId`)
  }
}
