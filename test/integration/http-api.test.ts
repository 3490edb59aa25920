/** The HTTP API: authentication, roles, limits and the error shape of CONTRACT.md. */
import assert from 'node:assert/strict'
import { startTestHerald, type TestHerald } from '../harness/herald.js'
import { http } from '../harness/http.js'
import { connectClient } from '../harness/mqtt.js'
import { eventually } from '../harness/wait.js'

describe('HTTP API', () => {
  let h: TestHerald
  before(async () => {
    h = await startTestHerald()
  })
  after(async () => {
    await h.close()
  })

  it('health, readiness and metrics need no token', async () => {
    assert.equal((await http(h.httpUrl, '/healthz')).status, 200)
    assert.equal((await http(h.httpUrl, '/readyz')).status, 200)
    const metrics = await http(h.httpUrl, '/metrics')
    assert.equal(metrics.status, 200)
    assert.match(String(metrics.body), /herald_connections/)
    assert.match(String(metrics.body), /herald_refusals_total|herald_presence_events_applied_total/)
  })

  it('metrics time every presence event from its node to the store (herald_presence_lag_seconds)', async () => {
    const count = async () => {
      const text = String((await http(h.httpUrl, '/metrics')).body)
      return Number(/^herald_presence_lag_seconds_count (\d+)$/m.exec(text)?.[1] ?? Number.NaN)
    }
    const before = await count()
    assert.ok(Number.isFinite(before), 'the histogram is exported')
    const c = await connectClient(h.mqttUrl, 'lagging', 'phone')
    await eventually(async () => ((await count()) > before ? true : undefined))
    await c.endAsync()
  })

  it('refuses requests without a valid token (401) and with the wrong role (403)', async () => {
    const none = await http(h.httpUrl, '/v1/presence/alice')
    assert.equal(none.status, 401)
    assert.deepEqual(Object.keys((none.body as { error: object }).error).sort(), ['code', 'message'])
    assert.equal((await http(h.httpUrl, '/v1/presence/alice', { token: 'nope' })).status, 401)
    const user = await h.token('alice')
    assert.equal((await http(h.httpUrl, '/v1/stats', { token: user })).status, 403)
  })

  it('answers presence for one user and for a batch; refuses bad ids and oversized batches', async () => {
    const c = await connectClient(h.mqttUrl, 'zoe', 'phone')
    const user = await h.token('yann')
    const view = await eventually(async () => {
      const res = await http(h.httpUrl, '/v1/presence/zoe', { token: user })
      return (res.body as { online: boolean }).online ? res : undefined
    })
    assert.equal(view.status, 200)
    const batch = await http(h.httpUrl, '/v1/presence/query', {
      token: user,
      body: { userIds: ['zoe', 'nobody'] },
    })
    assert.equal(batch.status, 200)
    const results = (batch.body as { results: Record<string, { online: boolean }> }).results
    assert.equal(results.zoe?.online, true)
    assert.equal(results.nobody?.online, false)
    assert.equal((await http(h.httpUrl, '/v1/presence/a$b', { token: user })).status, 400)
    const tooMany = Array.from({ length: 1001 }, (_v, i) => `u${i}`)
    assert.equal(
      (await http(h.httpUrl, '/v1/presence/query', { token: user, body: { userIds: tooMany } })).status,
      413,
    )
    assert.equal(
      (await http(h.httpUrl, '/v1/presence/query', { token: user, body: { nope: 1 } })).status,
      400,
    )
    c.end(true)
  })

  it("remote addresses: a user reading someone else's presence gets none; the user herself and a service do", async () => {
    const c = await connectClient(h.mqttUrl, 'remy', 'phone')
    type Detail = { clientId: string; remoteAddress?: string }
    type View = { online: boolean; connectionsDetail: Detail[] }
    const [other, self, svc] = await Promise.all([
      h.token('yann'),
      h.token('remy'),
      h.token('ops', { role: 'service' }),
    ])
    const get = async (token: string) => (await http(h.httpUrl, '/v1/presence/remy', { token })).body as View
    const query = async (token: string) =>
      (
        (await http(h.httpUrl, '/v1/presence/query', { token, body: { userIds: ['remy'] } })).body as {
          results: Record<string, View>
        }
      ).results.remy!
    await eventually(async () => ((await get(svc)).online ? true : undefined))
    for (const [who, token, shown] of [
      ['another user', other, false],
      ['the user herself', self, true],
      ['a service', svc, true],
    ] as const) {
      for (const [how, view] of [
        ['GET', await get(token)],
        ['query', await query(token)],
      ] as const) {
        const [detail] = view.connectionsDetail
        assert.equal(detail?.clientId, 'remy/phone', `${who}, ${how}: the connection is listed`)
        assert.equal(
          'remoteAddress' in detail,
          shown,
          `${who}, ${how}: remoteAddress ${shown ? 'shown' : 'withheld'}`,
        )
        if (shown) assert.match(detail.remoteAddress ?? '', /127\.0\.0\.1/)
      }
    }
    c.end(true)
  })

  it('stats list online users, connections and nodes', async () => {
    const c = await connectClient(h.mqttUrl, 'stat', 'phone')
    const token = await h.token('ops', { role: 'admin' })
    const stats = await eventually(async () => {
      const res = await http(h.httpUrl, '/v1/stats', { token })
      const body = res.body as {
        onlineUsers: number
        nodes: Array<{ nodeId: string; epoch: number; state: string }>
      }
      return body.onlineUsers >= 1 && body.nodes.length === 1 ? body : undefined
    })
    assert.equal(stats.nodes[0]?.nodeId, h.herald.config.nodeId)
    assert.equal(stats.nodes[0]?.state, 'up')
    c.end(true)
  })

  it('unknown routes are 404 with the error shape', async () => {
    const res = await http(h.httpUrl, '/v1/nothing-here')
    assert.equal(res.status, 404)
    assert.equal((res.body as { error: { code: string } }).error.code, 'not-found')
  })
})
