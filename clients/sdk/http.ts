/** The few HTTP API calls the SDK makes (fetch: Node ≥ 18 and browsers). */
import { HttpApiError } from './errors.js'

export async function httpJson<T>(
  base: string,
  path: string,
  token: string,
  init: { method?: string; body?: unknown; timeoutMs: number },
): Promise<T> {
  let res: Response
  try {
    res = await fetch(new URL(path, base), {
      method: init.method ?? 'GET',
      headers: {
        authorization: `Bearer ${token}`,
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      signal: AbortSignal.timeout(init.timeoutMs),
    })
  } catch (err) {
    throw new HttpApiError(
      0,
      'unreachable',
      `cannot reach the HTTP API at ${base}: ${(err as Error).message}`,
    )
  }
  const body = (await res.json().catch(() => undefined)) as
    | (T & { error?: { code?: string; message?: string } })
    | undefined
  if (!res.ok) {
    throw new HttpApiError(
      res.status,
      body?.error?.code ?? `http-${res.status}`,
      body?.error?.message ?? res.statusText,
    )
  }
  return body as T
}
