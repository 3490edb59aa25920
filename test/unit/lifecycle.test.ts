import assert from 'node:assert/strict'
import { isLifecycleFilter, LifecycleDemand, watchesLifecycle } from '../../broker/lifecycle.js'

describe('lifecycle events: who may subscribe, and when a node publishes them (LifecycleDemand)', () => {
  let now = 1_000_000
  const clock = () => now

  it('the ACL takes $SYS/<nodeId|+>/presence/<kind|+|#> and nothing else under $SYS', () => {
    for (const ok of [
      '$SYS/+/presence/+',
      '$SYS/n1/presence/conn',
      '$SYS/+/presence/#',
      '$SYS/a.b-c/presence/bye',
    ])
      assert.equal(isLifecycleFilter(ok), true, ok)
    for (const no of [
      '$SYS/#',
      '$SYS/+/#',
      '$SYS/+/+/+',
      '$SYS/herald/claims',
      '$SYS/+/presence',
      '$SYS/+/presence/snap',
      '$SYS/+/presence/conn/x',
      '$SYS/n 1/presence/conn',
      'presence/+',
    ])
      assert.equal(isLifecycleFilter(no), false, no)
  })

  it('a subscription counts when its filter matches some lifecycle topic, wildcards included', () => {
    for (const yes of ['$SYS/#', '$SYS/+/#', '$SYS/+/+/conn', '$SYS/n1/presence/+', '$SYS/+/presence/hb/#'])
      assert.equal(watchesLifecycle(yes), true, yes)
    for (const no of [
      '#',
      '+/presence/conn',
      '$SYS/herald/control/n1',
      '$SYS/+/heartbeat',
      '$SYS/+/presence/snap',
    ])
      assert.equal(watchesLifecycle(no), false, no)
  })

  it('publishes while a local subscriber is there: says so at once and every interval, stops with the last', async () => {
    const said: string[] = []
    let onSay = () => {}
    const demand = new LifecycleDemand({
      nodeId: 'a',
      everyMs: 20,
      announce: (p) => {
        said.push(p)
        onSay()
      },
      now: clock,
    })
    try {
      const control = () => {}
      demand.subscribed('$SYS/herald/control/a', control)
      assert.equal(demand.wanted, false, "Herald's own subscriptions are not readers")
      const one = () => {}
      const two = () => {}
      demand.subscribed('$SYS/+/presence/+', one)
      assert.deepEqual(said, ['{"n":"a"}'], 'announced at once')
      demand.subscribed('$SYS/a/presence/conn', two)
      assert.equal(said.length, 1, 'the first subscriber is announced, not each')
      assert.equal(demand.wanted, true)
      await new Promise<void>((resolve) => {
        onSay = resolve
      })
      assert.equal(said.length, 2, 'repeated every interval')
      demand.unsubscribed(one)
      demand.unsubscribed(one) // twice: Aedes may remove a listener it already removed
      assert.equal(demand.wanted, true)
      demand.unsubscribed(two)
      assert.equal(demand.wanted, false)
      const after = said.length
      await new Promise((r) => setTimeout(r, 60)) // three intervals: no timer left to announce
      assert.equal(said.length, after)
    } finally {
      demand.stop()
    }
  })

  it("another node's subscribers keep it publishing for 3 intervals after their last announcement; its own are ignored", () => {
    const demand = new LifecycleDemand({ nodeId: 'a', everyMs: 1000, announce: () => {}, now: clock })
    demand.heard('{"n":"a"}')
    assert.equal(demand.wanted, false, 'its own announcement')
    demand.heard('not json')
    demand.heard('{"n":7}')
    assert.equal(demand.wanted, false, 'unreadable announcements are ignored')
    demand.heard('{"n":"b"}')
    assert.equal(demand.wanted, true)
    now += 2999
    assert.equal(demand.wanted, true)
    now += 1
    assert.equal(demand.wanted, false)
  })
})
