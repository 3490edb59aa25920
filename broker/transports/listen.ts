/** Binding helpers shared by the transports. */
import type { Server as HttpServer } from 'node:http'
import type { Server as NetServer } from 'node:net'
import type { PortSetting } from '../../services/core/config.js'

export async function listen(
  server: NetServer | HttpServer,
  port: PortSetting,
  host: string,
): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(err)
    server.once('error', onError)
    server.listen(port === 'auto' ? 0 : port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  const addr = server.address()
  return typeof addr === 'object' && addr ? addr.port : 0
}

/**
 * Stops accepting connections. Resolves at once: `server.close()` would wait for every open
 * connection, and the open ones are closed by whoever owns them (Aedes, the HTTP server).
 */
export async function stopAccepting(server: NetServer | HttpServer): Promise<void> {
  server.close()
}
