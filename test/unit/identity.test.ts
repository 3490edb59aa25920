import assert from 'node:assert/strict'
import { Authenticator, mintToken } from '../../services/core/auth.js'
import { parseEnvelope, parseStatus } from '../../services/core/envelope.js'
import { isIdentifier, parseClientId } from '../../services/core/identity.js'
import { parseTopic } from '../../services/core/topics.js'

describe('identity, tokens, topics, envelopes', () => {
  it('identifiers refuse /, +, #, $ and overlong ids', () => {
    for (const ok of ['alice', 'a.b-c_d', 'x'.repeat(64)]) assert.ok(isIdentifier(ok), ok)
    for (const bad of ['', 'a/b', 'a+b', 'a#', '$sys', 'x'.repeat(65), 'é'])
      assert.ok(!isIdentifier(bad), bad)
    assert.deepEqual(parseClientId('alice/phone'), { userId: 'alice', deviceId: 'phone' })
    for (const bad of ['alice', 'alice/', '/phone', 'a/b/c', 'al ice/phone'])
      assert.equal(parseClientId(bad), null, bad)
  })

  it('tokens carry sub, role and expiry; tampering and foreign secrets are refused', async () => {
    const auth = await Authenticator.create({ secret: 's'.repeat(32) })
    const token = await mintToken('s'.repeat(32), 'alice', { role: 'admin', ttl: '1h' })
    const p = await auth.verify(token)
    assert.equal(p.userId, 'alice')
    assert.equal(p.role, 'admin')
    assert.ok(p.exp && p.exp > Date.now() / 1000)
    await assert.rejects(auth.verify(token.slice(0, -2) + 'xx'), { code: 'bad-signature' })
    await assert.rejects(auth.verify(await mintToken('t'.repeat(32), 'alice')), { code: 'bad-signature' })
    await assert.rejects(auth.verify(await mintToken('s'.repeat(32), 'alice', { ttl: -5 })), {
      code: 'expired',
    })
    await assert.rejects(auth.verify('abc'), { code: 'malformed' })
    await assert.rejects(auth.verify(undefined), { code: 'missing' })
  })

  it('topics parse into the contract tree', () => {
    assert.deepEqual(parseTopic('users/alice/inbox'), { kind: 'inbox', userId: 'alice' })
    assert.deepEqual(parseTopic('users/alice/devices/phone'), {
      kind: 'device',
      userId: 'alice',
      deviceId: 'phone',
    })
    assert.deepEqual(parseTopic('presence/bob'), { kind: 'presence', userId: 'bob' })
    assert.deepEqual(parseTopic('users/alice/rpc/history'), {
      kind: 'rpc',
      userId: 'alice',
      rest: ['history'],
    })
    assert.deepEqual(parseTopic('users/al$ce/inbox'), { kind: 'other' })
    assert.deepEqual(parseTopic('presence/a/b'), { kind: 'other' })
  })

  it('envelopes and statuses are refused with a code, never a throw', () => {
    const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v))
    assert.deepEqual(parseEnvelope(enc({ id: 'm1', body: { text: 'hi' } }), 1024), {
      ok: true,
      value: { id: 'm1', body: { text: 'hi' } },
    })
    const code = (r: ReturnType<typeof parseEnvelope>) => (r.ok ? 'ok' : r.refusal.code)
    assert.equal(code(parseEnvelope(enc('{'), 1024)), 'invalid-json')
    assert.equal(code(parseEnvelope(enc([1]), 1024)), 'not-an-object')
    assert.equal(code(parseEnvelope(enc({ body: 1 }), 1024)), 'missing-id')
    assert.equal(code(parseEnvelope(enc({ id: 'a/b' }), 1024)), 'bad-id')
    assert.equal(code(parseEnvelope(enc({ id: 'm', body: 'x'.repeat(2000) }), 1024)), 'too-large')
    assert.equal(parseStatus(enc({ status: 'away', meta: { a: 1 } })).ok, true)
    assert.equal(parseStatus(enc({ status: null })).ok, true)
    assert.equal(parseStatus(enc({ status: 'x'.repeat(33) })).ok, false)
    assert.equal(parseStatus(enc({ status: 'away', meta: { a: 'x'.repeat(1100) } })).ok, false)
  })
})
