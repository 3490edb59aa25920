/**
 * JWT identity (CONTRACT.md): `sub` = userId, `role` (user | service | admin), `exp`, `iat`.
 * HS256 with a shared secret, or RS256/ES256 with one or more public keys (several = rotation).
 * The secret of the all-in-one process is generated once into the data folder with mode 0600.
 */
import { createPublicKey, type KeyObject, randomBytes, type webcrypto } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from 'jose'
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

interface PublicKeyEntry {
  key: KeyObject
  alg: 'RS256' | 'ES256'
  kid: string | undefined
}

export interface AuthenticatorOptions {
  secret?: string | undefined
  /** PEM files with public keys; each file may hold several keys. */
  publicKeyFiles?: string[] | undefined
  revocations?: RevocationList | undefined
}

export class Authenticator {
  private constructor(
    /** The HS256 secret, imported once: jose would import a raw Uint8Array on every verify. */
    private readonly secret: webcrypto.CryptoKey | undefined,
    private readonly publicKeys: PublicKeyEntry[],
    private readonly revocations: RevocationList | undefined,
  ) {}

  static async create(opts: AuthenticatorOptions): Promise<Authenticator> {
    const keys: PublicKeyEntry[] = []
    for (const file of opts.publicKeyFiles ?? []) {
      const pem = await readFile(file, 'utf8')
      const blocks = pem.match(/-----BEGIN [^-]+-----[\s\S]+?-----END [^-]+-----/g) ?? []
      if (blocks.length === 0) throw new Error(`no PEM public key in ${file}`)
      blocks.forEach((block, i) => {
        const key = createPublicKey(block)
        const type = key.asymmetricKeyType
        if (type !== 'rsa' && type !== 'ec') throw new Error(`${file}: unsupported key type ${type}`)
        keys.push({
          key,
          alg: type === 'rsa' ? 'RS256' : 'ES256',
          kid: blocks.length > 1 ? `${i}` : undefined,
        })
      })
    }
    const secret = opts.secret
      ? await crypto.subtle.importKey(
          'raw',
          new TextEncoder().encode(opts.secret),
          { name: 'HMAC', hash: 'SHA-256' },
          false,
          ['verify'],
        )
      : undefined
    if (!secret && keys.length === 0) throw new Error('no JWT secret or public key configured')
    return new Authenticator(secret, keys, opts.revocations)
  }

  /** Verifies a token and returns its principal, or throws AuthError. */
  async verify(token: string | undefined): Promise<Principal> {
    if (!token) throw new AuthError('missing', 'no token')
    if (token.length > 8192 || token.split('.').length !== 3) throw new AuthError('malformed', 'not a JWT')
    const payload = await this.verifySignature(token)
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
    return { userId: sub, role: role as Role, iat, exp: payload.exp }
  }

  private async verifySignature(token: string): Promise<JWTPayload & { role?: unknown }> {
    const candidates: Array<{ key: webcrypto.CryptoKey | KeyObject; alg: string }> = []
    if (this.secret) candidates.push({ key: this.secret, alg: 'HS256' })
    for (const k of this.publicKeys) candidates.push({ key: k.key, alg: k.alg })
    let last: unknown
    for (const c of candidates) {
      try {
        const { payload } = await jwtVerify(token, c.key, {
          algorithms: [c.alg],
        })
        return payload
      } catch (err) {
        last = err
        if (err instanceof joseErrors.JWTExpired) throw new AuthError('expired', 'token expired')
        if (err instanceof joseErrors.JWTClaimValidationFailed) {
          throw new AuthError('bad-claims', err.message)
        }
      }
    }
    if (last instanceof joseErrors.JWSInvalid || last instanceof joseErrors.JWTInvalid) {
      throw new AuthError('malformed', 'not a valid JWT')
    }
    throw new AuthError('bad-signature', 'signature does not verify')
  }
}

export interface MintOptions {
  role?: Role
  /** jose time span: `1h`, `30m`, `7d`, or seconds as a number. Default 1h. */
  ttl?: string | number
  /** Issued-at, seconds since the epoch (default now). */
  issuedAt?: number
}

export async function mintToken(secret: string, userId: string, opts: MintOptions = {}): Promise<string> {
  if (!isIdentifier(userId)) throw new Error(`userId must match [A-Za-z0-9._-]{1,64}: ${userId}`)
  const ttl = opts.ttl ?? '1h'
  const jwt = new SignJWT({ role: opts.role ?? 'user' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(userId)
    .setIssuedAt(opts.issuedAt)
  jwt.setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl)
  return jwt.sign(new TextEncoder().encode(secret))
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
