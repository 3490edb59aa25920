/**
 * A back end: a service token sends to users and learns the offset; `query()` answers who is
 * online on how many devices.
 *   HERALD_TOKEN=$(npx herald token ops --role service) node dist/clients/sdk/examples/backend.js alice
 */
import { connect, RejectedError } from '../index.js'

const token = process.env.HERALD_TOKEN
if (!token) throw new Error('set HERALD_TOKEN (npx herald token ops --role service)')
const to = process.argv[2] ?? 'alice'

const ops = await connect({
  url: process.env.HERALD_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
  httpUrl: process.env.HERALD_HTTP_URL ?? 'http://127.0.0.1:8080',
  userId: 'ops',
  deviceId: `worker-${process.pid}`,
  cleanSession: true, // a short-lived job: no session to keep
  token,
})

const view = (await ops.query([to]))[to]
console.log(`${to}: ${view?.online ? `online on ${view.connections} device(s)` : 'offline'}`)
try {
  // the same id on a retry (a restarted job) is recorded once
  const { id, offset } = await ops.send(
    to,
    { text: 'your report is ready' },
    { id: `report-${to}-2026-11`, type: 'notice' },
  )
  console.log(`recorded ${id} at ${offset}`)
} catch (err) {
  if (err instanceof RejectedError) console.error(`refused: ${err.code}`)
  else throw err
}
ops.on('receipt', (r) => console.log(`${r.id} ${r.status} by ${r.by}`))
await ops.close()
