/** The SDK's reconnect delays: exponential ceiling, full jitter, capped. */
import assert from 'node:assert/strict'
import { backoffDelay, compareOffsets } from '../../clients/sdk/index.js'

describe('SDK backoff and offsets', () => {
  it('delays grow exponentially up to the cap, jittered over [0, ceiling)', () => {
    const opts = { minMs: 500, maxMs: 30_000 }
    const top = (n: number) => backoffDelay(n, opts, () => 0.999999)
    assert.deepEqual([0, 1, 2, 3, 6, 7, 50].map(top), [499, 999, 1999, 3999, 29_999, 29_999, 29_999])
    assert.equal(
      backoffDelay(5, opts, () => 0),
      0,
    )
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(3, opts)
      assert.ok(d >= 0 && d < 4000)
    }
  })

  it('offsets compare by time, then sequence', () => {
    assert.ok(compareOffsets('1700000000000-2', '1700000000000-10') < 0)
    assert.ok(compareOffsets('1700000000001-0', '1700000000000-10') > 0)
    assert.equal(compareOffsets('5-5', '5-5'), 0)
  })
})
