/** Binding helpers shared by the transports. */
import type { Server as HttpServer } from 'node:http'
import type { Server as NetServer } from 'node:net'
import type { PortSetting } from '../../services/core/config.js'

export async function listen(server: NetServer | HttpServer, port: PortSetting, host: string): Promise<number> {
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

export async function closeServer(server: NetServer | HttpServer): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
