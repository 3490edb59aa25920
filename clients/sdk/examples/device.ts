/**
 * A device: stays connected, reports its status, prints messages to it and watches a friend.
 *   npm start                                  # in another terminal
 *   HERALD_TOKEN=$(npx herald token thermostat) node dist/clients/sdk/examples/device.js
 */
import { connect } from '../index.js'

const token = process.env.HERALD_TOKEN
if (!token) throw new Error('set HERALD_TOKEN (npx herald token thermostat)')

const device = await connect({
  url: process.env.HERALD_MQTT_URL ?? 'mqtt://127.0.0.1:1883',
  httpUrl: process.env.HERALD_HTTP_URL ?? 'http://127.0.0.1:8080',
  userId: 'thermostat',
  token,
  // no deviceId: one is generated once and kept in ~/.herald/devices/thermostat
})
console.log(`connected as thermostat/${device.deviceId}`)

device.on('message', (m) => console.log(`${m.from}: ${JSON.stringify(m.body)} (offset ${m.offset})`))
device.on('online', (doc) => console.log(`${doc.userId} is online`))
device.on('offline', (doc) => console.log(`${doc.userId} went offline (${doc.reason})`))
device.on('disconnect', () => console.log('connection lost, reconnecting…'))
device.on('reconnect', () => console.log('back; caught up'))
device.on('error', (err) => console.error(err.message))

await device.watch(['alice'])
await device.setStatus('available', { firmware: '1.4.2' })
process.on('SIGINT', () => void device.close().then(() => process.exit(0)))
