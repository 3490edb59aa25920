import assert from 'node:assert/strict'
import { createHmac, generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSigner } from 'fast-jwt'
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

  it('tokens hand-made to slip through are refused with the right code', async () => {
    const secret = 's'.repeat(32)
    const auth = await Authenticator.create({ secret })
    const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const signed = (header: object, payload: unknown) => {
      const input = `${part(header)}.${part(payload)}`
      return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`
    }
    const hs = { alg: 'HS256', typ: 'JWT' }
    const now = Math.floor(Date.now() / 1000)
    const cases: Array<[string, string]> = [
      [`${part({ alg: 'none' })}.${part({ sub: 'alice' })}.`, 'malformed'],
      [signed(hs, [1]), 'malformed'],
      [signed({ ...hs, crit: ['x'], x: 1 }, { sub: 'alice' }), 'malformed'],
      [signed(hs, { sub: 'alice', nbf: now + 600 }), 'bad-claims'],
      [signed(hs, { sub: 'alice', exp: 'later' }), 'bad-claims'],
      [signed(hs, { sub: 'a/b' }), 'bad-claims'],
      [signed(hs, { sub: 'alice', role: 'root' }), 'bad-claims'],
      [createSigner({ key: secret, algorithm: 'HS384' })({ sub: 'alice' }), 'bad-signature'],
    ]
    for (const [token, code] of cases) await assert.rejects(auth.verify(token), { code }, token)
    const plain = await auth.verify(signed(hs, { sub: 'alice' }))
    assert.deepEqual(plain, { userId: 'alice', role: 'user', iat: 0, exp: undefined })
    // minted as issued earlier, it still lives its ttl from now
    const early = await auth.verify(await mintToken(secret, 'bob', { issuedAt: now - 7200, ttl: '1h' }))
    assert.equal(early.iat, now - 7200)
    assert.ok(early.exp! >= now + 3599)
  })

  it('RS256 and ES256 tokens verify against a file of public keys (rotation); others are refused', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 })
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const stranger = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const dir = await mkdtemp(join(tmpdir(), 'herald-keys-'))
    try {
      const file = join(dir, 'keys.pem')
      const pem = (k: typeof rsa.publicKey) => k.export({ type: 'spki', format: 'pem' }) as string
      await writeFile(file, pem(rsa.publicKey) + pem(ec.publicKey))
      const auth = await Authenticator.create({ publicKeyFiles: [file] })
      const sign = (key: typeof rsa.privateKey, algorithm: 'RS256' | 'ES256', claims: object) =>
        createSigner({ key: key.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm })(claims)
      assert.equal((await auth.verify(sign(rsa.privateKey, 'RS256', { sub: 'rita' }))).userId, 'rita')
      const svc = await auth.verify(sign(ec.privateKey, 'ES256', { sub: 'ops', role: 'service' }))
      assert.deepEqual([svc.userId, svc.role], ['ops', 'service'])
      await assert.rejects(auth.verify(sign(stranger.privateKey, 'ES256', { sub: 'eve' })), {
        code: 'bad-signature',
      })
      await assert.rejects(auth.verify(await mintToken('s'.repeat(32), 'eve')), { code: 'bad-signature' })
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
      await writeFile(file, pem(p384.publicKey))
      await assert.rejects(Authenticator.create({ publicKeyFiles: [file] }), /unsupported key ec secp384r1/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
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
