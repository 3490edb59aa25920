/** The CLI's HTTP calls: token from --token, HERALD_TOKEN, or minted from the local secret. */
import { mintToken, type Role } from '../../../services/core/auth.js'
import { explain, fail, withProgress } from '../output.js'
import { localSecret } from './token.js'

export interface HttpTarget {
  http: string
  token?: string
}

export async function bearer(opts: { token?: string }, as: { userId: string; role: Role }): Promise<string> {
  const token = opts.token ?? process.env.HERALD_TOKEN
  if (token) return token
  return mintToken(await localSecret(), as.userId, { role: as.role, ttl: '5m' })
}

export async function getJson(
  target: HttpTarget,
  path: string,
  token: string,
  init: RequestInit = {},
): Promise<unknown> {
  const url = new URL(path, target.http)
  let res: Response
  try {
    res = await withProgress(
      `asking ${url.origin}${url.pathname}`,
      fetch(url, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
        signal: AbortSignal.timeout(15_000),
      }),
    )
  } catch (err) {
    fail(
      explain(
        (err as { cause?: unknown }).cause ?? err,
        "Herald's HTTP API",
        target.http,
        '--http or HERALD_HTTP_URL',
      ),
    )
  }
  const body = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } }
  if (!res.ok) {
    const hint =
      res.status === 401
        ? ' — is the token from this Herald (same HERALD_AUTH_SECRET) and not expired? Mint one with `herald token`'
        : res.status === 403
          ? ' — this needs a service or admin token: `herald token ops --role service`'
          : res.status === 404 && !body.error
            ? ` — is ${target.http} Herald's HTTP API? (default port 8080)`
            : ''
    fail(`${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? res.statusText}${hint}`)
  }
  return body
}
