/** JSON over HTTP for tests. */
export async function http(
  base: string,
  path: string,
  /** `raw`: the request body as written, not serialised (JSON that JSON.stringify would refuse). */
  opts: { token?: string; method?: string; body?: unknown; raw?: string } = {},
): Promise<{ status: number; body: unknown }> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body))
  const res = await fetch(new URL(path, base), {
    method: opts.method ?? (payload === undefined ? 'GET' : 'POST'),
    headers: {
      ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
      ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: payload,
  })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {}
  return { status: res.status, body }
}
