import assert from 'node:assert/strict'
import { envelopeIdOf, MAX_JSON_DEPTH, nestsDeeperThan, parseEnvelope } from '../../services/core/envelope.js'

describe('JSON nesting depth (nestsDeeperThan)', () => {
  const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`

  it('counts objects and arrays, up to the limit and one past it', () => {
    assert.equal(nestsDeeperThan(nested(64), 64), false)
    assert.equal(nestsDeeperThan(nested(65), 64), true)
    assert.equal(nestsDeeperThan(`${'{"a":'.repeat(65)}1${'}'.repeat(65)}`, 64), true)
    assert.equal(nestsDeeperThan('[[],[],[[]]]'.repeat(1000), 3), false, 'siblings are not depth')
  })

  it('does not count brackets inside strings, escaped quotes included', () => {
    const text = JSON.stringify({ id: 'a', body: `${'['.repeat(500)} \\" ${'{'.repeat(500)}"` })
    assert.equal(nestsDeeperThan(text, 2), false)
    assert.equal(JSON.parse(text).id, 'a')
  })

  it('an envelope past the limit is refused as too-deep, one at it is taken', () => {
    const at = parseEnvelope(Buffer.from(`{"id":"m","body":${nested(MAX_JSON_DEPTH - 1)}}`), 65536)
    assert.equal(at.ok, true)
    const past = parseEnvelope(Buffer.from(`{"id":"m","body":${nested(MAX_JSON_DEPTH)}}`), 65536)
    assert.equal(past.ok, false)
    assert.equal(!past.ok && past.refusal.code, 'too-deep')
  })

  it('the id of a refused publish is read within the same limit, or not at all', () => {
    const payload = (levels: number) => Buffer.from(`{"id":"m","body":${nested(levels)}}`)
    assert.equal(envelopeIdOf(payload(MAX_JSON_DEPTH - 1), 65536), 'm')
    assert.equal(envelopeIdOf(payload(MAX_JSON_DEPTH), 65536), undefined)
    assert.equal(envelopeIdOf(payload(1), 10), undefined, 'past the size limit')
  })
})
