import assert from 'node:assert/strict'
import { type ConfigError, loadConfig } from '../../services/core/config.js'

describe('configuration', () => {
  it('defaults make a single machine work', () => {
    const c = loadConfig({ env: {} })
    assert.equal(c.mqttPort, 1883)
    assert.equal(c.wsPort, 8083)
    assert.equal(c.httpPort, 8080)
    assert.equal(c.host, '127.0.0.1')
    assert.equal(c.redisUrl, undefined)
    assert.equal(c.nodeHeartbeatMs, 5000)
    assert.match(c.nodeId, /^node-[0-9a-f]{8}$/)
  })

  it('flags win over env, and 0 stays 0 (listener off)', () => {
    const c = loadConfig({
      env: { HERALD_MQTT_PORT: '1999', HERALD_WS_PORT: '0' },
      flags: { mqttPort: '2000' },
    })
    assert.equal(c.mqttPort, 2000)
    assert.equal(c.wsPort, 0)
  })

  it('an invalid value names the setting', () => {
    assert.throws(
      () => loadConfig({ env: { HERALD_HTTP_PORT: '70000' } }),
      (err: ConfigError) => err.setting === 'HERALD_HTTP_PORT' && /HERALD_HTTP_PORT/.test(err.message),
    )
    assert.throws(() => loadConfig({ env: { HERALD_LOG_LEVEL: 'loud' } }), /HERALD_LOG_LEVEL/)
    assert.throws(() => loadConfig({ env: { HERALD_REDIS_URL: 'localhost:6379' } }), /HERALD_REDIS_URL/)
    assert.throws(() => loadConfig({ env: { HERALD_NODE_ID: 'a/b' } }), /HERALD_NODE_ID/)
  })

  it('an access node needs an explicit id in Redis mode', () => {
    assert.throws(
      () => loadConfig({ env: { HERALD_REDIS_URL: 'redis://x' }, nodeIdRequiredWithRedis: true }),
      /HERALD_NODE_ID/,
    )
    const c = loadConfig({
      env: { HERALD_REDIS_URL: 'redis://x', HERALD_NODE_ID: 'a1' },
      nodeIdRequiredWithRedis: true,
    })
    assert.equal(c.nodeId, 'a1')
  })
})
