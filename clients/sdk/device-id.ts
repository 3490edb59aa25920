/**
 * A deviceId when the caller gives none: stable per device, distinct per browser tab, so two tabs
 * or two devices of one user never share a clientId (`<userId>/<deviceId>`) and take each other over.
 * - Browser: sessionStorage (one per tab; survives a reload of that tab).
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

export async function defaultDeviceId(userId: string, dir?: string): Promise<string> {
  const storage = tabStorage()
  if (storage) {
    const key = `herald-device:${userId}`
    const kept = storage.getItem(key)
    if (kept && IDENTIFIER.test(kept)) return kept
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
