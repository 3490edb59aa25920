/**
 * Identifiers and client ids (CONTRACT.md "Identity"): userId and deviceId match
 * `[A-Za-z0-9._-]{1,64}` — no `/`, `+`, `#`, `$` — and a clientId is `<userId>/<deviceId>`.
 */
export const IDENTIFIER = /^[A-Za-z0-9._-]{1,64}$/

export function isIdentifier(value: unknown): value is string {
  return typeof value === 'string' && IDENTIFIER.test(value)
}

export interface ClientIdParts {
  userId: string
  deviceId: string
}

/** Splits `<userId>/<deviceId>`; null when either half breaks the identifier rule. */
export function parseClientId(clientId: string): ClientIdParts | null {
  const slash = clientId.indexOf('/')
  if (slash < 0 || clientId.indexOf('/', slash + 1) >= 0) return null
  const userId = clientId.slice(0, slash)
  const deviceId = clientId.slice(slash + 1)
  if (!IDENTIFIER.test(userId) || !IDENTIFIER.test(deviceId)) return null
  return { userId, deviceId }
}

export function clientIdOf(userId: string, deviceId: string): string {
  return `${userId}/${deviceId}`
}
