/**
 * compose.yaml names only commands and settings Herald has, and has the topology the docs
 * promise: Redis with AOF and a healthcheck, the presence service, two access nodes.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import { HERALD_NODE_FLAGS } from '../../clients/cli/node-flags.js'
import { SETTINGS } from '../../services/core/config.js'

interface Service {
  image?: string
  command?: string[]
  environment?: Record<string, string>
  healthcheck?: unknown
}

describe('compose.yaml', () => {
  const file = fileURLToPath(new URL('../../../compose.yaml', import.meta.url))
  const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, Service> }
  const services = compose.services
  const BIN = 'dist/clients/cli/herald.js'
  const herald = Object.entries(services).filter(([, s]) => s.command?.includes(BIN))
  /** The herald subcommand (after the bin; Node options come before it). */
  const sub = (s: Service) => s.command?.[s.command.indexOf(BIN) + 1]

  it('runs only herald subcommands that exist', () => {
    assert.ok(herald.length >= 3)
    for (const [name, s] of herald) {
      assert.equal(s.command?.[0], 'node', name)
      // with the Node options Herald's servers run with (clients/cli/node-flags.ts)
      assert.deepEqual(s.command?.slice(1, s.command.indexOf(BIN)), HERALD_NODE_FLAGS, name)
      assert.ok(['start', 'node', 'presence'].includes(sub(s) ?? ''), `${name}: ${s.command?.join(' ')}`)
    }
  })

  it('sets only environment variables Herald reads', () => {
    const known = new Set(SETTINGS.map((s) => s.env))
    for (const [name, s] of herald) {
      for (const key of Object.keys(s.environment ?? {}))
        assert.ok(known.has(key), `${name}: unknown setting ${key}`)
      assert.ok(s.environment?.HERALD_REDIS_URL?.startsWith('redis://'), `${name}: HERALD_REDIS_URL`)
      assert.ok(s.environment?.HERALD_AUTH_SECRET, `${name}: HERALD_AUTH_SECRET`)
    }
  })

  it('is Redis with AOF and a healthcheck, one presence service and two access nodes with their own ids', () => {
    const redis = services.redis
    assert.ok(redis?.command?.join(' ').includes('--appendonly yes'))
    assert.ok(redis?.healthcheck)
    assert.equal(herald.filter(([, s]) => sub(s) === 'presence').length, 1)
    const nodes = herald.filter(([, s]) => sub(s) === 'node')
    assert.equal(nodes.length, 2)
    const ids = new Set(nodes.map(([, s]) => s.environment?.HERALD_NODE_ID))
    assert.equal(ids.size, 2)
  })
})
