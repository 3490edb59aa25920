/** `herald token <userId>`: mint a JWT with the configured (or generated development) secret. */
import { parse as parseSpan } from '@lukeed/ms'
import type { Command } from 'commander'
import { mintToken, ROLES, type Role, resolveSecret } from '../../../services/core/auth.js'
import { loadConfig } from '../../../services/core/config.js'
import { isIdentifier } from '../../../services/core/identity.js'
import { fail } from '../output.js'

export async function localSecret(dataDir?: string): Promise<string> {
  const config = loadConfig({ overrides: dataDir ? { dataDir } : {} })
  const { secret } = await resolveSecret(config, { generate: false })
  if (!secret) {
    fail(
      `no JWT secret: set HERALD_AUTH_SECRET, or start Herald once (npm start) so it writes one to ${config.dataDir}/secret`,
    )
  }
  return secret
}

export function tokenCommand(program: Command): void {
  program
    .command('token <userId>')
    .description('mint a JWT for a user (HS256, with HERALD_AUTH_SECRET or the data folder secret)')
    .option('--role <role>', 'user, service or admin', 'user')
    .option('--ttl <span>', 'lifetime: 30m, 1h, 7d, or seconds', '1h')
    .option('--data-dir <dir>', 'data folder holding the development secret [env HERALD_DATA_DIR]')
    .action(async (userId: string, opts: { role: string; ttl: string; dataDir?: string }) => {
      if (!isIdentifier(userId)) fail(`userId must match [A-Za-z0-9._-]{1,64}: ${JSON.stringify(userId)}`)
      if (!(ROLES as readonly string[]).includes(opts.role)) fail(`--role must be one of ${ROLES.join(', ')}`)
      const ttl = /^\d+$/.test(opts.ttl) ? Number(opts.ttl) : opts.ttl
      if (typeof ttl === 'string' && !((parseSpan(ttl) ?? 0) > 0))
        fail(`--ttl must be a time span (30m, 1h, 7d) or seconds: ${JSON.stringify(opts.ttl)}`)
      const token = await mintToken(await localSecret(opts.dataDir), userId, { role: opts.role as Role, ttl })
      process.stdout.write(token + '\n')
    })
}
