/**
 * The web page at `/` (clients/web, bundled by esbuild into dist/clients/web at build time),
 * its runtime settings, and — only with the development secret the all-in-one process
 * generated, and only for requests from this machine — a token helper for signing in.
 */
import { readFile } from 'node:fs/promises'
import { isIdentifier } from '../core/identity.js'
import { HttpError, type Router } from './router.js'

const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
}

function isLoopback(address: string | undefined): boolean {
  return (
    address !== undefined &&
    (address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.'))
  )
}

export function webRoutes(
  router: Router,
  deps: {
    /** Port of MQTT over WebSocket the page should use (0 = none in this process). */
    wsPort: () => number | undefined
    /** Mints a user token; only given in development (generated secret). */
    devToken?: (userId: string) => Promise<string>
  },
): void {
  const dir = new URL('../../clients/web/', import.meta.url)
  for (const [path, asset] of Object.entries(ASSETS)) {
    router.add('GET', path, async () => {
      try {
        return {
          status: 200,
          text: await readFile(new URL(asset.file, dir), 'utf8'),
          contentType: asset.type,
        }
      } catch {
        throw new HttpError(404, 'not-built', 'the web page is not built: run npm run build')
      }
    })
  }
  router.add('GET', '/web/config', () => ({
    status: 200,
    body: { wsPort: deps.wsPort() ?? null, wsPath: '/mqtt', devSignIn: deps.devToken !== undefined },
  }))
  router.add('POST', '/web/dev-token', async ({ req, body }) => {
    if (!deps.devToken || !isLoopback(req.socket.remoteAddress)) {
      throw new HttpError(
        403,
        'dev-only',
        'sign-in helper only with the generated development secret, from this machine',
      )
    }
    const userId = (body as { userId?: unknown } | undefined)?.userId
    if (typeof userId !== 'string' || !isIdentifier(userId)) {
      throw new HttpError(400, 'bad-user-id', 'userId must match [A-Za-z0-9._-]{1,64}')
    }
    return { status: 200, body: { token: await deps.devToken(userId) } }
  })
}
