import assert from 'node:assert/strict'
import { overriding } from '../../broker/persistence-overrides.js'

/** A persistence-shaped object: methods on the prototype that read `this`, a plain property. */
class Store {
  readonly name = 'store'
  stored: string[] = []
  store(what: string) {
    this.stored.push(what)
    return `stored ${what}`
  }
  read() {
    return this.stored.length
  }
  del() {
    return 'deleted'
  }
}

describe('persistence overrides (overriding)', () => {
  it('layers keep every override, the outer one winning, and the rest is the target’s own', () => {
    const target = new Store()
    const inner = overriding(target, {
      // an inner override calls what it captured: the target
      store: (what: string) => target.store(`inner(${what})`),
      del: () => 'inner del',
    })
    const outer = overriding(inner, {
      // an outer override calls the inner layer, whose own override still applies
      store: (what: string) => inner.store(`outer(${what})`),
      read: () => -1,
    })
    assert.equal(outer.store('x'), 'stored inner(outer(x))')
    assert.deepEqual(target.stored, ['inner(outer(x))'])
    assert.equal(outer.read(), -1, 'outer override')
    assert.equal(inner.read(), 1, 'the inner layer is unchanged by the outer one')
    assert.equal(outer.del(), 'inner del', 'an inner override nobody replaced')
    assert.equal(outer.name, 'store', 'plain properties are the target’s')
  })

  it('methods not overridden are bound to the target, once, and follow a replaced method', () => {
    const target = new Store()
    const p = overriding(overriding(target, {}), {})
    const { store } = p // Aedes reads methods off the persistence and calls them later
    store('a')
    assert.deepEqual(target.stored, ['a'])
    assert.equal(p.read, p.read, 'one bound function per method')
    target.read = () => 42
    assert.equal(p.read(), 42, 'a method replaced on the target is what a read returns')
  })
})
