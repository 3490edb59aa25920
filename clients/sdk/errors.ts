/**
 * The SDK's errors. Every one extends HeraldError and carries a `code`, so callers can switch on
 * `err.code` or use `instanceof`.
 */

/** Base class of every error the SDK throws or emits. */
export class HeraldError extends Error {
  override name = 'HeraldError'
  constructor(
    /** A stable, machine-readable code. */
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/**
 * Herald refused a message (`rejected` receipt). `code` is the refusal's code: `bad-type`,
 * `too-large`, `not-allowed`, `rate-limited`, …; the message is Herald's explanation.
 */
export class RejectedError extends HeraldError {
  override name = 'RejectedError'
  constructor(
    /** The refused message's id. */
    readonly id: string,
    code: string,
    message: string,
  ) {
    super(code, message)
  }
}

/**
 * The connection was refused or could not be made. `code` is `bad-token` (CONNACK 4),
 * `not-authorized` (CONNACK 5), `bad-client-id` (CONNACK 2), `unreachable` (socket error) or
 * `connack-<n>`; `returnCode` is the CONNACK return code when there was one.
 */
export class ConnectError extends HeraldError {
  override name = 'ConnectError'
  constructor(
    code: string,
    message: string,
    readonly returnCode?: number,
    /** The socket error behind an `unreachable` (its `code` is e.g. `ECONNREFUSED`). */
    cause?: unknown,
  ) {
    super(code, message, { cause })
  }
}

/** Herald did not answer a request in time (`history()`, the status lookup of `send()`). */
export class TimeoutError extends HeraldError {
  override name = 'TimeoutError'
  constructor(message: string) {
    super('timeout', message)
  }
}

/** The HTTP API answered with an error (`{ error: { code, message } }`) or could not be reached. */
export class HttpApiError extends HeraldError {
  override name = 'HttpApiError'
  constructor(
    /** The HTTP status; 0 when the API could not be reached. */
    readonly status: number,
    code: string,
    message: string,
  ) {
    super(code, message)
  }
}

/** The client is closed, or an option or argument is invalid. */
export class UsageError extends HeraldError {
  override name = 'UsageError'
}

/** From an mqtt.js connection error to a ConnectError that says what to do. */
export function connectError(err: Error & { code?: number | string }, url: string): ConnectError {
  switch (err.code) {
    case 2:
      return new ConnectError('bad-client-id', 'CONNACK 2: userId or deviceId is not [A-Za-z0-9._-]{1,64}', 2)
    case 4:
      return new ConnectError(
        'bad-token',
        'CONNACK 4: bad or expired token, or a username other than the userId — mint a new one (herald token <userId>)',
        4,
      )
    case 5:
      return new ConnectError(
        'not-authorized',
        'CONNACK 5: not authorized — the token is for another user, revoked, or connections are rate limited',
        5,
      )
    default:
      if (typeof err.code === 'number')
        return new ConnectError(`connack-${err.code}`, `CONNACK ${err.code}: ${err.message}`, err.code)
      return new ConnectError('unreachable', `cannot reach Herald at ${url}: ${err.message}`, undefined, err)
  }
}
