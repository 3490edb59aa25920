/**
 * Who may see whose presence (HERALD_VISIBILITY). `all` (everyone sees everyone) is the
 * default; `none` hides everyone from users; a roster callback URL asks the application.
 * Services and admins always see; a user always sees herself.
 */
import type { Logger } from './logger.js'

export interface VisibilityPolicy {
  /** May `viewer` (a user) see `target`'s presence? */
  canSee(viewer: string, target: string): boolean | Promise<boolean>
}

export const everyoneVisible: VisibilityPolicy = { canSee: () => true }

export const nobodyVisible: VisibilityPolicy = { canSee: (viewer, target) => viewer === target }

/**
 * Asks the application: `GET <url>?viewer=<v>&target=<t>` answers `{ "visible": true|false }`
 * (or 200/403 with any body). Answers are cached for `cacheMs`; a callback that fails or
 * times out means "not visible" (fail closed) and is logged, and the failure is not cached.
 */
export function rosterCallback(opts: {
  url: string
  cacheMs: number
  logger: Logger
  timeoutMs?: number
  maxCached?: number
}): VisibilityPolicy {
  const log = opts.logger.child({ component: 'visibility' })
  const cache = new Map<string, { visible: boolean; until: number }>()
  const maxCached = opts.maxCached ?? 100_000
  async function ask(viewer: string, target: string): Promise<boolean> {
    const url = new URL(opts.url)
    url.searchParams.set('viewer', viewer)
    url.searchParams.set('target', target)
    const res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs ?? 2000) })
    if (res.status === 403 || res.status === 404) return false
    if (!res.ok) throw new Error(`roster callback answered ${res.status}`)
    const text = await res.text()
    if (text.trim() === '') return true
    const body = JSON.parse(text) as { visible?: unknown }
    return body.visible === true
  }
  return {
    async canSee(viewer, target) {
      if (viewer === target) return true
      const key = `${viewer}\n${target}`
      const now = Date.now()
      const hit = cache.get(key)
      if (hit && hit.until > now) return hit.visible
      try {
        const visible = await ask(viewer, target)
        if (opts.cacheMs > 0) {
          if (cache.size >= maxCached) cache.delete(cache.keys().next().value as string)
          cache.set(key, { visible, until: now + opts.cacheMs })
        }
        return visible
      } catch (err) {
        log.warn({ viewer, target, err: (err as Error).message }, 'roster callback failed; not visible')
        return false
      }
    },
  }
}

/** The policy a HERALD_VISIBILITY setting names. */
export function visibilityFromConfig(
  config: { visibility: string; visibilityCacheMs: number },
  logger: Logger,
): VisibilityPolicy {
  if (config.visibility === 'all') return everyoneVisible
  if (config.visibility === 'none') return nobodyVisible
  return rosterCallback({ url: config.visibility, cacheMs: config.visibilityCacheMs, logger })
}
