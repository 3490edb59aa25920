/**
 * JWT identity (CONTRACT.md): `sub` = userId, `role` (user | service | admin), `exp`, `iat`.
 * HS256 with a shared secret, or RS256/ES256 with one or more public keys (several = rotation).
 * The secret of the all-in-one process is generated once into the data folder with mode 0600.
 */
import { createPublicKey, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parse as parseSpan } from '@lukeed/ms'
import { createSigner, createVerifier, TokenError } from 'fast-jwt'
import { isIdentifier } from './identity.js'

export type Role = 'user' | 'service' | 'admin'
export const ROLES: readonly Role[] = ['user', 'service', 'admin']

export interface Principal {
  userId: string
  role: Role
  /** Issued-at, seconds since the epoch. */
  iat: number
  /** Expiry, seconds since the epoch (tokens without one never expire). */
  exp: number | undefined
}

export type AuthErrorCode = 'missing' | 'malformed' | 'bad-signature' | 'expired' | 'bad-claims' | 'revoked'

export class AuthError extends Error {
  override name = 'AuthError'
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message)
  }
}

/** Tells whether tokens of a user issued before some time were revoked (the security issue fills it in). */
export interface RevocationList {
  revokedBefore(userId: string): number | undefined
}

type Verify = (token: string) => Claims

/** The claims Herald reads; anything else in a token is ignored. */
interface Claims {
  sub?: unknown
  role?: unknown
  iat?: unknown
  exp?: unknown
}

export interface AuthenticatorOptions {
  secret?: string | undefined
  /** PEM files with public keys; each file may hold several keys. */
  publicKeyFiles?: string[] | undefined
  revocations?: RevocationList | undefined
}

/**
 * fast-jwt verifies with node:crypto, synchronously: an HS256 token costs ~10 µs where jose's
 * WebCrypto job cost ~40 µs and a trip through the thread pool (issue "Speed"). `exp` and
 * `nbf` are checked with no clock tolerance, `alg: none` and algorithms other than the key's
 * are refused.
 */
export class Authenticator {
  private constructor(
    /** One verifier per key, tried in order: the HS256 secret, then each public key. */
    private readonly verifiers: Verify[],
    private readonly revocations: RevocationList | undefined,
  ) {}

  static async create(opts: AuthenticatorOptions): Promise<Authenticator> {
    const verifiers: Verify[] = []
    if (opts.secret) verifiers.push(createVerifier({ key: opts.secret, algorithms: ['HS256'] }))
    for (const file of opts.publicKeyFiles ?? []) {
      const pem = await readFile(file, 'utf8')
      const blocks = pem.match(/-----BEGIN [^-]+-----[\s\S]+?-----END [^-]+-----/g) ?? []
      if (blocks.length === 0) throw new Error(`no PEM public key in ${file}`)
      for (const block of blocks) {
        const key = createPublicKey(block)
        const type = key.asymmetricKeyType
        const curve = key.asymmetricKeyDetails?.namedCurve
        if (type === 'rsa') verifiers.push(createVerifier({ key: block, algorithms: ['RS256'] }))
        else if (type === 'ec' && curve === 'prime256v1')
          verifiers.push(createVerifier({ key: block, algorithms: ['ES256'] }))
        else
          throw new Error(
            `${file}: unsupported key ${type}${curve ? ` ${curve}` : ''} (RS256 or ES256 P-256)`,
          )
      }
    }
    if (verifiers.length === 0) throw new Error('no JWT secret or public key configured')
    return new Authenticator(verifiers, opts.revocations)
  }

  /** Verifies a token and returns its principal, or throws AuthError. */
  async verify(token: string | undefined): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token')
    if (token.length > 8192 || token.split('.').length !== 3) throw new AuthError('malformed', 'not a JWT')
    const payload = this.verifySignature(token)
    const sub = payload.sub
    if (!isIdentifier(sub)) throw new AuthError('bad-claims', 'sub is not a valid userId')
    const role = payload.role ?? 'user'
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) {
      throw new AuthError('bad-claims', 'role must be user, service or admin')
    }
    const iat = typeof payload.iat === 'number' ? payload.iat : 0
    const revokedBefore = this.revocations?.revokedBefore(sub)
    if (revokedBefore !== undefined && iat * 1000 < revokedBefore) {
      throw new AuthError('revoked', 'token was revoked')
    }
    return {
      userId: sub,
      role: role as Role,
      iat,
      exp: typeof payload.exp === 'number' ? payload.exp : undefined,
    }
  }

  private verifySignature(token: string): Claims {
    let malformed = false
    for (const verify of this.verifiers) {
      try {
        return verify(token)
      } catch (err) {
        if (!(err instanceof TokenError)) {
          malformed = true // whatever else a hand-made token makes the decoder throw
          continue
        }
        switch (err.code) {
          case TokenError.codes.expired:
            throw new AuthError('expired', 'token expired')
          case TokenError.codes.inactive:
          case TokenError.codes.invalidClaimType:
          case TokenError.codes.invalidClaimValue:
            throw new AuthError('bad-claims', err.message)
          case TokenError.codes.malformed:
          case TokenError.codes.invalidPayload:
          case TokenError.codes.invalidType:
          case TokenError.codes.missingSignature:
          case TokenError.codes.invalidCritHeader:
            malformed = true
        }
        // a signature or algorithm another key may match: try the next one
      }
    }
    if (malformed) throw new AuthError('malformed', 'not a valid JWT')
    throw new AuthError('bad-signature', 'signature does not verify')
  }
}

export interface MintOptions {
  role?: Role
  /** Lifetime from now: `30m`, `1h`, `7d`, `2 days`, or seconds as a number. Default 1h. */
  ttl?: string | number
  /** Issued-at, seconds since the epoch (default now). */
  issuedAt?: number
}

export async function mintToken(secret: string, userId: string, opts: MintOptions = {}): Promise<string> {
  if (!isIdentifier(userId)) throw new Error(`userId must match [A-Za-z0-9._-]{1,64}: ${userId}`)
  const ttl = opts.ttl ?? '1h'
  const seconds = typeof ttl === 'number' ? ttl : (parseSpan(ttl) ?? Number.NaN) / 1000
  if (!Number.isFinite(seconds)) throw new Error(`ttl must be a time span (30m, 1h, 7d) or seconds: ${ttl}`)
  const now = Math.floor(Date.now() / 1000)
  // exp from now, not from iat (a token minted as issued earlier still lives its ttl)
  const claims = {
    sub: userId,
    role: opts.role ?? 'user',
    iat: opts.issuedAt ?? now,
    exp: now + Math.floor(seconds),
  }
  return createSigner({ key: secret, algorithm: 'HS256' })(claims)
}

export const SECRET_FILE = 'secret'

/**
 * The HS256 secret: the configured one, else the data folder's, else (when `generate`) a new
 * one written to `<dataDir>/secret` with mode 0600.
 */
export async function resolveSecret(
  cfg: { authSecret: string | undefined; dataDir: string },
  opts: { generate: boolean },
): Promise<{
  secret: string | undefined
  generatedAt?: string
  file?: string
}> {
  if (cfg.authSecret) return { secret: cfg.authSecret }
  const file = join(cfg.dataDir, SECRET_FILE)
  try {
    const secret = (await readFile(file, 'utf8')).trim()
    if (secret.length >= 16) return { secret, file }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  if (!opts.generate) return { secret: undefined }
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 })
  const secret = randomBytes(32).toString('base64url')
  await writeFile(file, secret + '\n', { mode: 0o600, flag: 'w' })
  return { secret, generatedAt: file, file }
}
