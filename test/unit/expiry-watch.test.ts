import assert from 'node:assert/strict'
import { ExpiryWatch } from '../../broker/limits.js'
import type { TrackedConn } from '../../broker/tracker.js'

/** Only what ExpiryWatch reads of a connection. */
const conn = (clientId: string, expSeconds: number) =>
  ({ clientId, closed: false, principal: { exp: expSeconds } }) as unknown as TrackedConn

describe('token expiry watch (ExpiryWatch)', () => {
  let now = 1_000_000_000
  const clock = () => now

  it('closes a connection after its token expired plus the grace, and only then', () => {
    const expired: string[] = []
    const watch = new ExpiryWatch(2000, (c) => expired.push(c.clientId), clock)
    watch.add(conn('a/1', now / 1000 + 10))
    now += 11_000
    watch.tick()
    assert.deepEqual(expired, [], 'within the grace')
    now += 1000
    watch.tick()
    assert.deepEqual(expired, ['a/1'])
    assert.equal(watch.size, 0)
  })

  it('lets a connection that ended go at once, not when its token would have expired', () => {
    const expired: string[] = []
    const watch = new ExpiryWatch(0, (c) => expired.push(c.clientId), clock)
    const gone = conn('a/1', now / 1000 + 3600)
    const stays = conn('b/1', now / 1000 + 3600) // the same second: one set for both
    watch.add(gone)
    watch.add(stays)
    assert.equal(watch.size, 2)
    watch.remove(gone)
    assert.equal(watch.size, 1, 'the ended connection (and its client) is not held for an hour')
    now += 3601_000
    watch.tick()
    assert.deepEqual(expired, ['b/1'])
    watch.remove(stays)
    assert.equal(watch.size, 0)
  })

  it('a connection whose token was already due when added is closed at the next tick, or dropped if it ended', () => {
    const expired: string[] = []
    const watch = new ExpiryWatch(0, (c) => expired.push(c.clientId), clock)
    watch.tick()
    const late = conn('late/1', now / 1000 - 60)
    const ended = conn('ended/1', now / 1000 - 60)
    watch.add(late)
    watch.add(ended)
    ;(ended as { closed: boolean }).closed = true
    watch.remove(ended)
    now += 1000
    watch.tick()
    assert.deepEqual(expired, ['late/1'])
    assert.equal(watch.size, 0)
  })
})
