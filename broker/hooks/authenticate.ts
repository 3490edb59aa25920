/**
 * Authenticate (CONNECT): the JWT rides in the password, the clientId is `<sub>/<deviceId>`.
 * CONNACK 2 = malformed clientId, 4 = bad or expired token (or username not the token's sub),
 * 5 = not authorized (clientId/sub mismatch, revoked, refused by a gate such as a rate limit).
 * Every refusal is logged with its reason and counted.
 */
import type { AuthenticateError, Client } from 'aedes'
import { AuthError, type Authenticator, type Principal } from '../../services/core/auth.js'
import { parseClientId } from '../../services/core/identity.js'
import type { Logger } from '../../services/core/logger.js'
import type { Metrics } from '../../services/core/metrics.js'

/** MQTT 3.1.1 CONNACK return codes Herald uses. */
export enum ConnackCode {
  ServerUnavailable = 3,
  IdentifierRejected = 2,
  BadUsernameOrPassword = 4,
  NotAuthorized = 5,
}

export interface ConnectAttempt {
  client: Client
  principal: Principal
  userId: string
  deviceId: string
  remoteAddress: string
}

/** A check after the token verified (rate limits, connection caps): a refusal or nothing. */
export type ConnectGate = (
  attempt: ConnectAttempt,
) => Promise<{ reason: string; retryAfterMs?: number } | undefined>

export interface AuthenticateDeps {
  auth: Authenticator
  logger: Logger
  metrics: Metrics
  remoteAddress: (client: Client) => string
  gates?: ConnectGate[]
  /** The connection is authenticated: track it (before CONNACK). */
  accepted: (attempt: ConnectAttempt) => void | Promise<void>
}

function refusal(code: ConnackCode, message: string): AuthenticateError {
  const err = new Error(message) as AuthenticateError
  err.returnCode = code as number
  return err
}

export function createAuthenticate(deps: AuthenticateDeps) {
  const log = deps.logger.child({ component: 'authenticate' })

  async function check(
    client: Client,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<void> {
    const remoteAddress = deps.remoteAddress(client)
    const refuse = (code: ConnackCode, reason: string, message: string, retryAfterMs?: number) => {
      deps.metrics.refusals.inc({ stage: 'connect', reason })
      log.warn(
        { untrusted: { clientId: client.id }, remoteAddress, reason, connack: code, retryAfterMs },
        'connect refused',
      )
      return refusal(code, message)
    }
    const parts = parseClientId(client.id)
    if (!parts) {
      throw refuse(ConnackCode.IdentifierRejected, 'bad-client-id', 'clientId must be <userId>/<deviceId>')
    }
    if (!password || password.length === 0) {
      throw refuse(ConnackCode.BadUsernameOrPassword, 'missing-token', 'a JWT is required in the password')
    }
    let principal: Principal
    try {
      principal = await deps.auth.verify(password.toString('utf8'))
    } catch (err) {
      if (!(err instanceof AuthError)) throw err
      const code = err.code === 'revoked' ? ConnackCode.NotAuthorized : ConnackCode.BadUsernameOrPassword
      throw refuse(code, `token-${err.code}`, err.message)
    }
    if (principal.userId !== parts.userId) {
      throw refuse(
        ConnackCode.NotAuthorized,
        'client-id-mismatch',
        'clientId must start with the token subject',
      )
    }
    if (username !== undefined && username !== '' && username !== principal.userId) {
      throw refuse(
        ConnackCode.BadUsernameOrPassword,
        'username-mismatch',
        'username must equal the token subject',
      )
    }
    const attempt: ConnectAttempt = {
      client,
      principal,
      userId: parts.userId,
      deviceId: parts.deviceId,
      remoteAddress,
    }
    for (const gate of deps.gates ?? []) {
      const refused = await gate(attempt)
      if (refused) {
        throw refuse(ConnackCode.NotAuthorized, refused.reason, refused.reason, refused.retryAfterMs)
      }
    }
    await deps.accepted(attempt)
  }

  return function authenticate(
    client: Client,
    username: Readonly<string | undefined>,
    password: Readonly<Buffer | undefined>,
    done: (error: AuthenticateError | null, success: boolean | null) => void,
  ): void {
    check(client, username, password).then(
      () => done(null, true),
      (err: AuthenticateError) => {
        if (err.returnCode === undefined) {
          // storage unreachable (claims, gates): the client may try again later
          log.warn(
            { untrusted: { clientId: client.id }, err: err.message },
            'connect refused: server unavailable',
          )
          deps.metrics.refusals.inc({ stage: 'connect', reason: 'unavailable' })
          err.returnCode = ConnackCode.ServerUnavailable as number
        }
        done(err, false)
      },
    )
  }
}
