/**
 * One contract for every PresenceStore implementation (memory and Redis run the same cases),
 * in the style of MQTT.js's abstract_store and socket.io-redis-adapter's test runner.
 */
import assert from 'node:assert/strict'
import type { PresenceStore, StoreOp } from '../../services/presence/store.js'
import { type ConnRecord, fenceToken } from '../../services/presence/types.js'

export interface StoreFixture {
  store: PresenceStore
  cleanup(): Promise<void>
}

let nextSeq = 1

export function conn(userId: string, deviceId: string, nodeId = 'n1', epoch = 1): ConnRecord {
  const f = { nodeId, epoch, connSeq: nextSeq++ }
  return {
    ...f,
    token: fenceToken(f),
    userId,
    deviceId,
    clientId: `${userId}/${deviceId}`,
    transport: 'tcp',
    remoteAddress: '127.0.0.1',
    connectedAt: 1000 + f.connSeq,
  }
}

export const connect = (c: ConnRecord, ts = 2000): StoreOp => ({ op: 'connect', conn: c, ts })
export const disconnect = (
  c: ConnRecord,
  reason: 'logout' | 'takeover' | 'connection-lost' = 'logout',
  ts = 3000,
) =>
  ({
    op: 'disconnect',
    nodeId: c.nodeId,
    epoch: c.epoch,
    token: c.token,
    userId: c.userId,
    reason,
    ts,
  }) as StoreOp

export function presenceStoreContract(name: string, make: () => Promise<StoreFixture>) {
  describe(`PresenceStore contract: ${name}`, () => {
    let fx: StoreFixture
    let store: PresenceStore

    beforeEach(async () => {
      fx = await make()
      store = fx.store
      store.setWriterEpoch(1)
    })
    afterEach(async () => {
      await fx.cleanup()
    })

    it('connect: the first connection is an online edge and the view shows it', async () => {
      const c = conn('alice', 'phone')
      const [change] = await store.apply([connect(c, 5000)])
      assert.equal(change?.kind, 'online')
      assert.equal(change?.doc.online, true)
      assert.equal(change?.doc.since, 5000)
      const view = await store.get('alice')
      assert.equal(view.online, true)
      assert.equal(view.connections, 1)
      assert.deepEqual(view.devices, ['phone'])
      assert.equal(view.connectionsDetail[0]?.clientId, 'alice/phone')
      assert.deepEqual(await store.stats(), { onlineUsers: 1, connections: 1 })
    })

    it('disconnect: the last connection is an offline edge with its reason; last-seen survives', async () => {
      const c = conn('alice', 'phone')
      await store.apply([connect(c, 5000)])
      const [change] = await store.apply([disconnect(c, 'logout', 9000)])
      assert.equal(change?.kind, 'offline')
      assert.equal(change?.doc.reason, 'logout')
      const view = await store.get('alice')
      assert.equal(view.online, false)
      assert.equal(view.reason, 'logout')
      assert.equal(view.lastSeen, 9000)
      assert.equal(view.since, 9000)
      assert.equal(view.connections, 0)
      assert.deepEqual(await store.stats(), { onlineUsers: 0, connections: 0 })
    })

    it('duplicate event: the same connect or disconnect twice changes nothing the second time', async () => {
      const c = conn('bob', 'laptop')
      const [first, again] = await store.apply([connect(c), connect(c)])
      assert.equal(first?.kind, 'online')
      assert.equal(again, null)
      assert.equal((await store.get('bob')).connections, 1)
      const [off, offAgain] = await store.apply([disconnect(c), disconnect(c)])
      assert.equal(off?.kind, 'offline')
      assert.equal(offAgain, null)
      assert.deepEqual(await store.stats(), { onlineUsers: 0, connections: 0 })
    })

    it('reordered events: a disconnect seen before its connect leaves the user offline', async () => {
      const c = conn('carol', 'tab1')
      const [early] = await store.apply([disconnect(c)])
      assert.equal(early, null)
      const [late] = await store.apply([connect(c)])
      assert.equal(late, null, 'the late connect of a dead connection is ignored')
      const view = await store.get('carol')
      assert.equal(view.online, false)
      assert.equal(view.connections, 0)
    })

    it('stale token: a disconnect naming another connection never removes the live one', async () => {
      const old = conn('dave', 'phone')
      const live = conn('dave', 'phone')
      await store.apply([connect(live)])
      const [change] = await store.apply([disconnect(old, 'connection-lost')])
      assert.equal(change, null)
      const view = await store.get('dave')
      assert.equal(view.online, true)
      assert.equal(view.connections, 1)
      assert.equal(view.connectionsDetail.length, 1)
    })

    it('stale epoch: events of a retired node epoch are ignored; the new epoch counts', async () => {
      const before = conn('erin', 'phone', 'n1', 1)
      await store.apply([connect(before)])
      const offline = await store.retireNode('n1', 2, 'node-lost', 4000)
      assert.deepEqual(
        offline.map((c) => [c.kind, c.doc.userId, c.doc.reason]),
        [['offline', 'erin', 'node-lost']],
      )
      const late = conn('erin', 'tablet', 'n1', 1)
      const [ignored] = await store.apply([connect(late)])
      assert.equal(ignored, null)
      assert.equal((await store.get('erin')).online, false)
      const after = conn('erin', 'phone', 'n1', 2)
      const [back] = await store.apply([connect(after)])
      assert.equal(back?.kind, 'online')
      assert.equal((await store.get('erin')).connections, 1)
    })

    it('multi-device: losing one of two devices is no edge; the view counts 1 connection', async () => {
      const phone = conn('frank', 'phone')
      const laptop = conn('frank', 'laptop')
      const changes = await store.apply([connect(phone), connect(laptop)])
      assert.deepEqual(
        changes.map((c) => c?.kind ?? null),
        ['online', null],
      )
      const [drop] = await store.apply([disconnect(phone, 'connection-lost')])
      assert.equal(drop, null)
      const view = await store.get('frank')
      assert.equal(view.online, true)
      assert.equal(view.connections, 1)
      assert.deepEqual(view.devices, ['laptop'])
    })

    it('takeover: the same clientId on another node, in either event order, is never an offline edge', async () => {
      // new connect first, then the old connection's takeover disconnect
      const a = conn('gina', 'phone', 'nodeA')
      const b = conn('gina', 'phone', 'nodeB')
      await store.apply([connect(a)])
      const ordered = await store.apply([connect(b), disconnect(a, 'takeover')])
      assert.deepEqual(
        ordered.map((c) => c?.kind ?? null),
        [null, null],
      )
      // old disconnect first: the user is pending, and the replacement clears it
      const c = conn('gina', 'phone', 'nodeA')
      await store.apply([connect(c), disconnect(b, 'takeover')])
      const d = conn('gina', 'phone', 'nodeB')
      const [pending] = await store.apply([disconnect(c, 'takeover', 5000)])
      assert.equal(pending?.kind, 'pending')
      assert.equal((await store.get('gina')).online, true, 'a pending takeover stays online')
      const [replaced] = await store.apply([connect(d)])
      assert.equal(replaced, null)
      assert.equal(await store.settle('gina', 1e13), null, 'nothing left to settle')
      const view = await store.get('gina')
      assert.equal(view.online, true)
      assert.equal(view.connections, 1)
    })

    it('takeover whose replacement never arrives settles offline after the grace', async () => {
      const a = conn('hank', 'phone')
      await store.apply([connect(a)])
      await store.apply([disconnect(a, 'takeover', 5000)])
      assert.equal(await store.settle('hank', 5001), null, 'not yet due')
      const settled = await store.settle('hank', 5000 + 60_000)
      assert.equal(settled?.kind, 'offline')
      assert.equal(settled?.doc.reason, 'connection-lost')
      assert.equal((await store.get('hank')).online, false)
    })

    it('a held offline edge carries the time the last connection ended, not the time it is settled', async () => {
      // a logout held while another node may still hold an earlier connection (defer), a
      // takeover whose replacement never came, a dead node's sweep: each settled later
      const [logout, taken] = [conn('uma', 'phone'), conn('vic', 'phone')]
      await store.apply([connect(logout, 2000), connect(taken, 2000)])
      const [held] = await store.apply([
        { ...disconnect(logout, 'logout', 7000), now: 7000, defer: true } as StoreOp,
      ])
      assert.equal(held?.kind, 'pending')
      await store.apply([disconnect(taken, 'takeover', 5000)])
      const swept = conn('wes', 'phone', 'n7')
      await store.apply([connect(swept, 2000)])
      await store.retireNode('n7', 2, 'node-lost', 4000, 9000)
      const early = await store.settleMany(['uma'], 10_005, true)
      const due = await store.settleMany(['vic', 'wes'], 5000 + 60_000)
      assert.deepEqual(
        [...early, ...due].map(
          (c) => c && [c.doc.userId, c.doc.online, c.doc.reason, c.doc.since, c.doc.lastSeen],
        ),
        [
          ['uma', false, 'logout', 7000, 7000],
          ['vic', false, 'connection-lost', 5000, 5000],
          ['wes', false, 'node-lost', 4000, 4000],
        ],
      )
      const views = await store.getMany(['uma', 'vic', 'wes'])
      assert.deepEqual(
        views.map((v) => [v.since, v.lastSeen]),
        [
          [7000, 7000],
          [5000, 5000],
          [4000, 4000],
        ],
        'the stored documents agree with the published edges',
      )
    })

    it('settleMany releases held users in order: early, only those still without connections', async () => {
      const [p, q, r] = [conn('pia', 'phone'), conn('quin', 'phone'), conn('rolf', 'phone')]
      await store.apply([connect(p), connect(q), connect(r)])
      await store.apply([disconnect(p, 'takeover', 5000), disconnect(q, 'takeover', 5000)])
      await store.apply([connect(conn('quin', 'tablet'))]) // quin came back in the grace
      const settled = await store.settleMany(['pia', 'quin', 'rolf'], 5001, true)
      assert.deepEqual(
        settled.map((c) => c && [c.kind, c.doc.userId, c.doc.online]),
        [['offline', 'pia', false], null, null],
      )
      assert.equal((await store.stats()).onlineUsers, 2)
      assert.deepEqual(await store.duePending(Number.MAX_SAFE_INTEGER), [])
    })

    it('replace-while-events-arrive: the snapshot replaces the node, newer events apply on top', async () => {
      const stays = conn('ivy', 'phone', 'n1')
      const vanished = conn('jack', 'phone', 'n1')
      const otherNode = conn('kate', 'phone', 'n2')
      await store.apply([connect(stays), connect(vanished), connect(otherNode)])

      const gen = await store.beginReplace('n1', 1)
      const fresh = conn('liam', 'phone', 'n1')
      const snapChanges = await store.putSnapshot('n1', gen, [stays, fresh], 6000)
      assert.deepEqual(
        snapChanges.map((c) => [c.kind, c.doc.userId]),
        [['online', 'liam']],
      )
      // events newer than the snapshot arrive while it is being applied
      const newer = conn('mia', 'phone', 'n1')
      const applied = await store.apply([connect(newer, 6500), disconnect(fresh, 'logout', 6600)])
      assert.deepEqual(
        applied.map((c) => c?.kind ?? null),
        ['online', 'offline'],
      )
      const swept = await store.endReplace('n1', gen, 'connection-lost', 7000)
      assert.deepEqual(
        swept.map((c) => [c.kind, c.doc.userId, c.doc.reason]),
        [['offline', 'jack', 'connection-lost']],
      )
      assert.equal((await store.get('ivy')).online, true)
      assert.equal((await store.get('mia')).online, true)
      assert.equal((await store.get('kate')).online, true, 'another node is untouched')
      const live = (await store.nodeConnections('n1')).map((c) => c.userId).sort()
      assert.deepEqual(live, ['ivy', 'mia'])
      assert.deepEqual(await store.stats(), { onlineUsers: 3, connections: 3 })
    })

    it('a read during re-syncs of the node never shows the user online without the connection every snapshot carries', async () => {
      const c = conn('rhea', 'phone', 'n1')
      await store.apply([connect(c)])
      let replacing = true
      const torn: string[] = []
      let reads = 0
      const reader = (async () => {
        while (replacing) {
          const v = await store.get('rhea')
          reads++
          if (!v.online || v.connections !== 1) torn.push(`online ${v.online}, ${v.connections} connections`)
          await new Promise((r) => setImmediate(r))
        }
      })()
      for (let i = 0; i < 300; i++) {
        const gen = await store.beginReplace('n1', 1)
        await store.putSnapshot('n1', gen, [c], 6000 + i)
        await store.endReplace('n1', gen, 'connection-lost', 6000 + i)
      }
      replacing = false
      await reader
      assert.ok(reads > 0)
      assert.deepEqual(torn, [], `${torn.length} of ${reads} reads were torn`)
    })

    it('snapshot records: a held edge is cancelled, an offline user comes back clean, two devices count once', async () => {
      const held = conn('opal', 'phone', 'n1')
      const gone = conn('pete', 'phone', 'n1')
      await store.apply([connect(held), connect(gone)])
      await store.apply([disconnect(held, 'takeover', 5000)]) // held: pending, no edge yet
      await store.apply([{ op: 'status', userId: 'pete', status: 'away', meta: undefined, ts: 5000 }])
      await store.apply([disconnect(gone, 'logout', 5000)])
      assert.equal((await store.get('pete')).reason, 'logout')

      const gen = await store.beginReplace('n1', 1)
      const [again, back, tabA, tabB] = [
        conn('opal', 'laptop', 'n1'),
        conn('pete', 'laptop', 'n1'),
        conn('quill', 'a', 'n1'),
        conn('quill', 'b', 'n1'),
      ]
      const changes = await store.putSnapshot('n1', gen, [again, back, tabA, tabB], 6000)
      assert.deepEqual(
        changes.map((c) => [c.kind, c.doc.userId, c.doc.online, c.doc.since]),
        [
          ['online', 'pete', true, 6000],
          ['online', 'quill', true, 6000],
        ],
        'opal was still online (held): no edge; quill once for two devices',
      )
      await store.endReplace('n1', gen, 'connection-lost', 6001)
      const pete = await store.get('pete')
      assert.equal(pete.reason, undefined, 'an online document has no offline reason')
      assert.equal(pete.status, undefined, 'a status does not survive being offline')
      assert.equal((await store.get('quill')).connections, 2)
      // (a deadline entry may linger until it is due: settling it then finds nothing to do)
      assert.equal(await store.settle('opal', 60_000), null, 'nothing to settle: she is back')
      assert.equal((await store.get('opal')).online, true)
      assert.deepEqual(await store.stats(), { onlineUsers: 3, connections: 4 })
    })

    it('a large snapshot (many script batches) writes and indexes every record; a stale writer is refused', async () => {
      const records = Array.from({ length: 1234 }, (_v, i) => conn(`bulk${i}`, 'd', 'n7'))
      const gen = await store.beginReplace('n7', 1)
      const changes = await store.putSnapshot('n7', gen, records, 6000)
      assert.equal(changes.length, records.length)
      assert.deepEqual(
        changes.map((c) => c.doc.userId),
        records.map((r) => r.userId),
        'edges in record order',
      )
      assert.equal((await store.nodeTokens('n7')).length, records.length)
      assert.deepEqual(await store.stats(), { onlineUsers: 1234, connections: 1234 })
      const views = await store.getMany(['bulk0', 'bulk617', 'bulk1233'])
      assert.deepEqual(
        views.map((v) => [v.online, v.connections]),
        [
          [true, 1],
          [true, 1],
          [true, 1],
        ],
      )
      store.setWriterEpoch(9)
      await store.apply([disconnect(records[5]!, 'logout', 7000)]) // bulk5 now belongs to writer 9
      store.setWriterEpoch(8)
      const next = await store.beginReplace('n7', 1)
      await assert.rejects(store.putSnapshot('n7', next, [records[5]!], 8000), { name: 'StaleWriterError' })
    })

    it('a dead node of many users (many sweep pages): its users go offline once, status cleared, counts exact', async () => {
      const many = Array.from({ length: 1321 }, (_v, i) => conn(`dead${i}`, 'd', 'n8'))
      const twice = [conn('twice', 'phone', 'n8'), conn('twice', 'tablet', 'n8')]
      const roams = [conn('roams', 'phone', 'n8'), conn('roams', 'tablet', 'n9')]
      await store.apply([...many, ...twice, ...roams].map((c) => connect(c)))
      await store.apply([{ op: 'status', userId: 'dead7', status: 'away', meta: { a: 1 }, ts: 2500 }])
      assert.deepEqual(await store.stats(), { onlineUsers: 1323, connections: 1325 })
      const swept = await store.retireNode('n8', 2, 'node-lost', 4000)
      assert.deepEqual(
        swept.map((c) => `${c.kind}:${c.doc.userId}`).sort(),
        [...many.map((c) => c.userId), 'twice'].map((u) => `offline:${u}`).sort(),
        'one offline edge per user of the node only, none for a user online elsewhere',
      )
      assert.ok(swept.every((c) => c.doc.reason === 'node-lost' && c.doc.since === 4000))
      assert.deepEqual(await store.stats(), { onlineUsers: 1, connections: 1 })
      assert.deepEqual(await store.nodeTokens('n8'), [])
      const [dead7, twice1, roams1] = await store.getMany(['dead7', 'twice', 'roams'])
      assert.deepEqual(
        [dead7!.online, dead7!.status, twice1!.online, roams1!.connections],
        [false, undefined, false, 1],
      )
      assert.deepEqual(await store.retireNode('n8', 2, 'node-lost', 5000), [], 'a second sweep finds nothing')
    })

    it("a sweep that holds: the node's users are pending, still online, until settled", async () => {
      const users = Array.from({ length: 700 }, (_v, i) => conn(`held${i}`, 'd', 'n6'))
      await store.apply(users.map((c) => connect(c)))
      const swept = await store.retireNode('n6', 2, 'node-lost', 4000, 9000)
      assert.equal(swept.length, users.length)
      assert.ok(swept.every((c) => c.kind === 'pending' && c.doc.online))
      assert.equal((await store.duePending(9000)).length, users.length)
      assert.deepEqual(await store.stats(), { onlineUsers: 700, connections: 0 })
      const settled = await store.settleMany(['held0', 'held699'], 9000)
      assert.deepEqual(
        settled.map((c) => [c?.kind, c?.doc.reason]),
        [
          ['offline', 'node-lost'],
          ['offline', 'node-lost'],
        ],
      )
    })

    it('status: set while online, unchanged values are no change, offline clears it', async () => {
      const c = conn('nina', 'phone')
      await store.apply([connect(c)])
      const status = (s: string | null, meta?: Record<string, unknown>): StoreOp => ({
        op: 'status',
        userId: 'nina',
        status: s,
        meta,
        ts: 2500,
      })
      const [set, same] = await store.apply([
        status('away', { note: 'lunch' }),
        status('away', { note: 'lunch' }),
      ])
      assert.equal(set?.kind, 'status')
      assert.equal(set?.doc.status, 'away')
      assert.deepEqual(set?.doc.meta, { note: 'lunch' })
      assert.equal(same, null)
      const [off] = await store.apply([disconnect(c)])
      assert.equal(off?.doc.status, undefined)
      const [ignored] = await store.apply([status('busy')])
      assert.equal(ignored, null, 'an offline user has no status')
    })

    it('status: last write wins by the time the node received it, not the order it is applied in', async () => {
      // a user's changes on two nodes reach the store in the order the service reads the
      // nodes' logs (a restarted service replaying them, a node's re-sync awaited)
      await store.apply([connect(conn('sol', 'phone', 'n1')), connect(conn('sol', 'laptop', 'n2'))])
      const status = (s: string | null, ts: number, meta?: Record<string, unknown>): StoreOp => ({
        op: 'status',
        userId: 'sol',
        status: s,
        meta,
        ts,
      })
      const [busy, away] = await store.apply([status('busy', 3030, { on: 'n2' }), status('away', 3000)])
      assert.equal(busy?.kind, 'status')
      assert.equal(away, null, 'older than the status held: no change, no edge')
      let view = await store.get('sol')
      assert.deepEqual([view.status, view.meta], ['busy', { on: 'n2' }])

      const [tie] = await store.apply([status('dnd', 3030)])
      assert.deepEqual(
        [tie?.kind, tie?.doc.status, tie?.doc.meta],
        ['status', 'dnd', undefined],
        'an equal time applies',
      )
      // the same value again, later: no edge, but the time held moves on
      const [same, between] = await store.apply([status('dnd', 3100), status('busy', 3050)])
      assert.deepEqual([same, between], [null, null])
      assert.equal((await store.get('sol')).status, 'dnd')

      // a clear is a change like any other: a later one clears, an older one is refused after it
      const [cleared, late] = await store.apply([status(null, 3200), status('away', 3150)])
      assert.deepEqual([cleared?.kind, cleared?.doc.status], ['status', undefined])
      assert.equal(late, null)
      view = await store.get('sol')
      assert.deepEqual([view.status, view.meta], [undefined, undefined])
      assert.equal((await store.apply([status('away', 3200)]))[0]?.doc.status, 'away')
    })

    it("status: after offline and online again, a change with any time applies (the old session's time is gone)", async () => {
      const status = (userId: string, s: string | null, ts: number): StoreOp => ({
        op: 'status',
        userId,
        status: s,
        meta: undefined,
        ts,
      })
      // every way a user goes offline and comes back: a logout and a connect, a dead node's
      // sweep and a re-sync's snapshot, a takeover whose replacement never came, settled
      const [out, swept, held] = [
        conn('tia', 'phone', 'n1'),
        conn('ugo', 'phone', 'n4'),
        conn('val', 'phone', 'n1'),
      ]
      await store.apply([connect(out), connect(swept), connect(held)])
      // ugo's change is a clear: the store holds its time and nothing else
      await store.apply([status('tia', 'busy', 9000), status('ugo', null, 9000), status('val', 'busy', 9000)])
      await store.apply([disconnect(out, 'logout', 9500), disconnect(held, 'takeover', 9500)])
      await store.retireNode('n4', 2, 'node-lost', 9500)
      assert.equal((await store.settle('val', 9500 + 60_000))?.kind, 'offline')
      assert.deepEqual(
        (await store.getMany(['tia', 'ugo', 'val'])).map((v) => [v.online, v.status]),
        [
          [false, undefined],
          [false, undefined],
          [false, undefined],
        ],
      )

      await store.apply([
        connect(conn('tia', 'phone', 'n1'), 10_000),
        connect(conn('val', 'phone', 'n1'), 10_000),
      ])
      const gen = await store.beginReplace('n4', 2)
      await store.putSnapshot('n4', gen, [conn('ugo', 'phone', 'n4', 2)], 10_000)
      await store.endReplace('n4', gen, 'connection-lost', 10_000)
      // a node whose clock is behind: earlier than anything the old sessions held
      const changes = await store.apply([
        status('tia', 'away', 1000),
        status('ugo', 'away', 1000),
        status('val', 'away', 1000),
      ])
      assert.deepEqual(
        changes.map((c) => [c?.kind, c?.doc.userId, c?.doc.status]),
        [
          ['status', 'tia', 'away'],
          ['status', 'ugo', 'away'],
          ['status', 'val', 'away'],
        ],
      )
    })

    it('stale writer: after a newer presence service wrote a user, the older one is refused', async () => {
      const c = conn('oscar', 'phone')
      store.setWriterEpoch(5)
      await store.apply([connect(c)])
      store.setWriterEpoch(4)
      await assert.rejects(store.apply([disconnect(c)]), { name: 'StaleWriterError' })
      store.setWriterEpoch(5)
      assert.equal((await store.get('oscar')).online, true)
    })

    it('stale writer: a node record a newer presence service wrote is refused to the older one; its generations never move back', async () => {
      store.setWriterEpoch(7)
      const gen = await store.beginReplace('n5', 1)
      await store.endReplace('n5', gen, 'connection-lost', 5000)
      store.setWriterEpoch(6)
      const stale = { name: 'StaleWriterError' }
      await assert.rejects(store.beginReplace('n5', 1), stale)
      await assert.rejects(store.endReplace('n5', gen - 1, 'connection-lost', 5000), stale)
      await assert.rejects(store.retireNode('n5', 2, 'node-lost', 5000), stale)
      await assert.rejects(store.noteHeartbeat('n5', 1, 3, 5000), stale)
      store.setWriterEpoch(7)
      const node = await store.node('n5')
      assert.deepEqual(
        [node?.gen, node?.liveGen, node?.minEpoch, node?.lastHeartbeat],
        [gen, gen, 0, 0],
        'as writer 7 left it',
      )
      await store.noteHeartbeat('n5', 1, 3, 6000)
      assert.equal((await store.node('n5'))?.lastHeartbeat, 6000, 'the current writer still writes it')
    })

    it('heartbeats and node records', async () => {
      await store.noteHeartbeat('n9', 3, 42, 12345)
      const node = await store.node('n9')
      assert.equal(node?.epoch, 3)
      assert.equal(node?.connections, 42)
      assert.equal(node?.lastHeartbeat, 12345)
      assert.ok((await store.nodes()).some((n) => n.nodeId === 'n9'))
    })

    it('getMany answers in order, unknown users offline', async () => {
      await store.apply([connect(conn('pat', 'phone'))])
      const views = await store.getMany(['nobody', 'pat'])
      assert.deepEqual(
        views.map((v) => [v.userId, v.online]),
        [
          ['nobody', false],
          ['pat', true],
        ],
      )
    })

    it('docs: each user’s last edge or status as published, in order; null for a user never online', async () => {
      const phone = conn('quin', 'phone')
      const [online] = await store.apply([connect(phone, 2000)])
      const [status] = await store.apply([
        { op: 'status', userId: 'quin', status: 'away', meta: { n: 1 }, ts: 2500 },
      ])
      assert.deepEqual(await store.docs(['quin']), [status!.doc])
      assert.equal(online!.doc.since, 2000)
      const [offline] = await store.apply([disconnect(phone, 'logout', 3000)])
      // a disconnect of a token never seen leaves a tombstone, not a document
      const ghost = conn('ghost', 'phone')
      await store.apply([disconnect(ghost)])
      assert.deepEqual(await store.docs(['nobody', 'quin', 'ghost']), [null, offline!.doc, null])
      assert.deepEqual(await store.docs([]), [])
    })
  })
}
