import assert from 'node:assert/strict'
import { RedisPresenceStore } from '../../services/presence/redis-store.js'
import type { StoreOp } from '../../services/presence/store.js'
import { prefixedRedis } from '../harness/shared-redis.js'
import { conn, connect, disconnect, presenceStoreContract } from './contract.js'

/** A store over the suite's shared redis-server, under a key prefix of its own. */
async function openStore(name: string) {
  const fixture = await prefixedRedis(`t-${name}-`, `store-${name}`)
  return { ...fixture, store: new RedisPresenceStore({ redis: fixture.redis, prefix: fixture.prefix }) }
}

presenceStoreContract('redis', () => openStore('contract'))

describe('RedisPresenceStore.repair: held users', () => {
  it('re-indexes a held user whose deadline entry a killed writer never wrote', async () => {
    const { store, redis, prefix, cleanup } = await openStore('repair')
    try {
      store.setWriterEpoch(1)
      const a = conn('held', 'phone')
      await store.apply([connect(a)])
      await store.apply([disconnect(a, 'takeover', 5000)])
      assert.deepEqual(await store.duePending(Number.MAX_SAFE_INTEGER), ['held'])
      assert.equal(await redis.exists(`${prefix}intents`), 0, 'a finished write leaves no intent')
      // the tear a writer of an earlier version could leave (live events then took two steps;
      // now one script): the script held the edge, the writer died before the indexing
      // pipeline, which also removes the write's announcement
      await redis.zrem(`${prefix}pending`, 'held')
      await redis.hset(`${prefix}intents`, '1:99', JSON.stringify(['held']))
      assert.deepEqual(await store.duePending(Number.MAX_SAFE_INTEGER), [])
      assert.deepEqual(await store.repair(), { pending: 1, indexes: 0 })
      assert.deepEqual(await store.duePending(Number.MAX_SAFE_INTEGER), ['held'])
      assert.equal((await store.settle('held', 5000 + 60_000))?.kind, 'offline')
      assert.deepEqual(await store.repair(), { pending: 0, indexes: 0 }, 'nothing left to repair')
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore.repair: node indexes', () => {
  it('re-indexes a connection whose node-index entry a killed writer never wrote, so a re-sync sweeps it', async () => {
    const { store, redis, prefix, cleanup } = await openStore('reindex')
    try {
      store.setWriterEpoch(1)
      const ghost = conn('ghost', 'phone', 'n1')
      await store.apply([connect(ghost)])
      // the tear a snapshot (two steps) or a writer of an earlier version can leave: the
      // record written, the writer dead before the indexing pipeline
      await redis.hdel(`${prefix}n:{n1}:idx`, ghost.token)
      await redis.hset(`${prefix}intents`, '1:99', JSON.stringify(['ghost']))
      assert.deepEqual(await store.repair(), { pending: 0, indexes: 1 })
      assert.deepEqual(await store.repair(), { pending: 0, indexes: 0 }, 'nothing left to repair')
      // the node re-syncs without that connection: the sweep finds it through the index
      const gen = await store.beginReplace('n1', 2)
      await store.putSnapshot('n1', gen, [], 6000)
      const swept = await store.endReplace('n1', gen, 'connection-lost', 7000, 0)
      assert.deepEqual(
        swept.map((c) => [c.kind, c.doc.userId]),
        [['offline', 'ghost']],
      )
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore: a hold written by the previous version', () => {
  it('a held user without the hold time (`pt`) settles as before: since and lastSeen = the release', async () => {
    const { store, redis, prefix, cleanup } = await openStore('old-hold')
    try {
      store.setWriterEpoch(1)
      const a = conn('olga', 'phone')
      await store.apply([connect(a, 2000)])
      await store.apply([{ ...disconnect(a, 'logout', 7000), now: 7000, defer: true } as StoreOp])
      assert.equal(await redis.hget(`${prefix}u:{olga}`, 'pt'), '7000', 'this version keeps the hold time')
      await redis.hdel(`${prefix}u:{olga}`, 'pt') // as the previous version's remove-6.lua left it
      const settled = await store.settle('olga', 10_005, true)
      assert.deepEqual(
        settled && [settled.doc.online, settled.doc.reason, settled.doc.since, settled.doc.lastSeen],
        [false, 'logout', 10_005, 10_005],
      )
      const view = await store.get('olga')
      assert.deepEqual([view.online, view.since, view.lastSeen], [false, 10_005, 10_005])
      assert.deepEqual(await redis.hmget(`${prefix}u:{olga}`, 'pend', 'pr', 'pt'), [null, null, null])
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore: a status written by the previous version', () => {
  it('a status without its time (`sts`) takes any change, which then holds its time', async () => {
    const { store, redis, prefix, cleanup } = await openStore('old-status')
    try {
      store.setWriterEpoch(1)
      const status = (s: string, ts: number): StoreOp => ({
        op: 'status',
        userId: 'odo',
        status: s,
        meta: undefined,
        ts,
      })
      await store.apply([connect(conn('odo', 'phone'), 2000)])
      await store.apply([status('away', 9000)])
      assert.equal(await redis.hget(`${prefix}u:{odo}`, 'sts'), '9000', 'this version keeps the time')
      await redis.hdel(`${prefix}u:{odo}`, 'sts') // as the previous version's status-1.lua left it
      const [busy] = await store.apply([status('busy', 1000)])
      assert.deepEqual([busy?.kind, busy?.doc.status], ['status', 'busy'])
      assert.equal(await redis.hget(`${prefix}u:{odo}`, 'sts'), '1000')
      assert.deepEqual(await store.apply([status('dnd', 999)]), [null], 'older than the time now held')
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore: generations after a data loss', () => {
  it('a record written under a generation the store has since forgotten is swept by the next replace', async () => {
    const { store, redis, prefix, cleanup } = await openStore('gen')
    try {
      const [first, next] = [1_796_000_000_000, 1_796_000_000_001] // writer epochs: at least the clock
      store.setWriterEpoch(first)
      const before = await store.beginReplace('n1', 1)
      await store.endReplace('n1', before, 'connection-lost', 1000)
      // Redis loses the node's record (FLUSHALL) while this writer, its generation cached, still
      // writes a connection that then ends during the re-sync (the snapshot no longer has it)
      await redis.del(`${prefix}n:{n1}`)
      const ghost = conn('ghost', 'phone', 'n1')
      await store.apply([connect(ghost)])
      store.setWriterEpoch(next) // the rebuild: a new writer, reading generations from what Redis has
      const gen = await store.beginReplace('n1', 1)
      assert.notEqual(gen, before, 'a generation is never used twice')
      const stays = conn('stays', 'phone', 'n1')
      await store.putSnapshot('n1', gen, [stays], 2000)
      await store.endReplace('n1', gen, 'connection-lost', 2000)
      assert.equal((await store.get('ghost')).online, false, 'the record of a forgotten generation was swept')
      assert.deepEqual(
        (await store.nodeConnections('n1')).map((c) => c.userId),
        ['stays'],
      )
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore: a sweep that meets a newer writer', () => {
  it('stops there, refused; every connection it swept left its user, its index and the counts together', async () => {
    const { store, redis, prefix, cleanup } = await openStore('sweep-stale')
    try {
      store.setWriterEpoch(1)
      const records = Array.from({ length: 1500 }, (_v, i) => conn(`s${i}`, 'd', 'n3'))
      await store.apply(records.map((c) => connect(c)))
      store.setWriterEpoch(2) // a newer presence service writes one of the node's users
      await store.apply([{ op: 'status', userId: 's700', status: 'away', meta: undefined, ts: 2500 }])
      store.setWriterEpoch(1)
      await assert.rejects(store.retireNode('n3', 2, 'node-lost', 4000), { name: 'StaleWriterError' })
      // the node's index as it stands (nodeTokens would leave out the retired epoch's entries)
      const left = new Set(await redis.hkeys(`${prefix}n:{n3}:idx`))
      assert.ok(left.has(records[700]!.token), "the newer writer's user is untouched")
      assert.ok(left.size < records.length, 'the sweep went some way before it stopped')
      // raw, as Redis holds it (a view leaves out the connections of a retired epoch)
      for (const c of records) {
        const online = left.has(c.token)
        const [doc, conns] = await Promise.all([
          redis.hget(`${prefix}u:{${c.userId}}`, 'online'),
          redis.hlen(`${prefix}u:{${c.userId}}:c`),
        ])
        assert.deepEqual([doc, conns], online ? ['1', 1] : ['0', 0], c.userId)
      }
      assert.deepEqual(await store.stats(), { onlineUsers: left.size, connections: left.size })
    } finally {
      await cleanup()
    }
  })
})

describe('RedisPresenceStore: live events are whole', () => {
  it('a batch refused midway (a newer writer) leaves every other event of it indexed and counted, nothing to repair', async () => {
    const { store, redis, prefix, cleanup } = await openStore('whole')
    try {
      store.setWriterEpoch(2)
      const [ann, bea, cid] = [
        conn('ann', 'phone', 'n4'),
        conn('bea', 'phone', 'n4'),
        conn('cid', 'phone', 'n4'),
      ]
      await store.apply([connect(bea)]) // bea's document now belongs to writer 2
      store.setWriterEpoch(1)
      await assert.rejects(store.apply([connect(ann), connect(cid), disconnect(bea, 'logout', 3000)]), {
        name: 'StaleWriterError',
      })
      const index = await redis.hgetall(`${prefix}n:{n4}:idx`)
      assert.deepEqual(Object.keys(index).sort(), [ann.token, bea.token, cid.token].sort())
      assert.equal(index[ann.token], 'ann|0')
      assert.deepEqual(await store.stats(), { onlineUsers: 3, connections: 3 })
      assert.equal(await redis.exists(`${prefix}intents`), 0, 'no write announced, none to repair')
      assert.deepEqual(await store.repair(), { pending: 0, indexes: 0 })
    } finally {
      await cleanup()
    }
  })
})
