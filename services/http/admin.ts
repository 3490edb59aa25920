/**
 * Admin: kick a user (or one device) on every node, and revoke the user's earlier tokens.
 * The command goes to every access node over the bus; revocations are also stored, so nodes
 * that miss the command (or start later) refuse the revoked tokens too.
 */

import type { RevocationStore } from '../cluster/revocations.js'
import type { Authenticator } from '../core/auth.js'
import { isIdentifier } from '../core/identity.js'
import type { ControlCommand } from '../events/types.js'
import { authorize, userIdParam } from './api.js'
import { HttpError, type Router } from './router.js'

export interface AdminDeps {
  auth: Authenticator
  revocations: RevocationStore
  /** Sends a command to every access node. */
  broadcast: (cmd: ControlCommand) => void
}

export function adminRoutes(router: Router, deps: AdminDeps): void {
  router.add('DELETE', '/v1/users/:userId/connections', async ({ req, params, query }) => {
    await authorize(deps.auth, req, ['admin'])
    const userId = userIdParam(params.userId)
    const deviceId = query.get('deviceId') ?? undefined
    if (deviceId !== undefined && !isIdentifier(deviceId)) {
      throw new HttpError(400, 'bad-device-id', 'deviceId must match [A-Za-z0-9._-]{1,64}')
    }
    const revoke = query.get('revoke') === 'true'
    const cmd: ControlCommand = { cmd: 'kick', userId }
    if (deviceId !== undefined) cmd.deviceId = deviceId
    if (revoke) {
      // tokens issued before this instant (iat, in seconds, rounded down) are refused from now on
      const at = Date.now()
      await deps.revocations.revoke(userId, at)
      cmd.revokedBefore = at
    }
    deps.broadcast(cmd)
    return { status: 202, body: { userId, ...(deviceId !== undefined ? { deviceId } : {}), revoked: revoke } }
  })
}
