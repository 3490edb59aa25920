/** MQTT over TCP, with Nagle off: Node's default adds ~40 ms to every QoS 1 round trip. */
import { createServer } from 'node:net'
import type { PortSetting } from '../../services/core/config.js'
import { listen, stopAccepting } from './listen.js'
import type { Accept, Listener } from './types.js'

export async function listenTcp(opts: {
  host: string
  port: PortSetting
  accept: Accept
}): Promise<Listener> {
  const server = createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true)
    opts.accept(socket, { transport: 'tcp', remoteAddress: socket.remoteAddress ?? '' })
  })
  const port = await listen(server, opts.port, opts.host)
  return { transport: 'tcp', port, close: () => stopAccepting(server) }
}
