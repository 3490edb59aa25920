/** One contract for both message stores (memory, Redis). */
import assert from 'node:assert/strict'
import type { Envelope } from '../../services/core/envelope.js'
import { compareOffsets, type MessageStore, type MessageStoreLimits } from '../../services/messaging/store.js'

export interface MessageStoreFixture {
  store: MessageStore
  cleanup(): Promise<void>
}

const env = (from: string, to: string, id: string, extra: Partial<Envelope> = {}): Envelope => ({
  id,
  from,
  to,
  ts: Date.now(),
  body: { text: id },
  ...extra,
})

export function messageStoreContract(
  name: string,
  make: (limits?: MessageStoreLimits) => Promise<MessageStoreFixture>,
) {
  describe(`MessageStore contract: ${name}`, () => {
    let fx: MessageStoreFixture
    afterEach(async () => {
      await fx.cleanup()
    })

    it('records in order with strictly increasing offsets; history returns them after an offset', async () => {
      fx = await make()
      const offsets: string[] = []
      for (let i = 0; i < 5; i++) offsets.push((await fx.store.record(env('alice', 'bob', `m${i}`))).offset)
      for (let i = 1; i < offsets.length; i++) assert.ok(compareOffsets(offsets[i - 1]!, offsets[i]!) < 0)
      const all = await fx.store.history('bob', { limit: 100 })
      assert.deepEqual(
        all.messages.map((m) => m.id),
        ['m0', 'm1', 'm2', 'm3', 'm4'],
      )
      assert.equal(all.messages[0]?.offset, offsets[0])
      assert.equal(all.messages[0]?.from, 'alice')
      assert.equal(all.next, offsets[4])
      const after = await fx.store.history('bob', { after: offsets[1], limit: 2 })
      assert.deepEqual(
        after.messages.map((m) => m.id),
        ['m2', 'm3'],
      )
      assert.equal(after.next, offsets[3])
      const rest = await fx.store.history('bob', { after: after.next, limit: 10 })
      assert.deepEqual(
        rest.messages.map((m) => m.id),
        ['m4'],
      )
      const none = await fx.store.history('bob', { after: rest.next, limit: 10 })
      assert.deepEqual(none.messages, [])
      assert.equal(none.next, rest.next)
    })

    it('de-duplicates on (from, id): a retry returns the first offset and stores nothing new', async () => {
      fx = await make()
      const first = await fx.store.record(env('alice', 'bob', 'dup-1'))
      const again = await fx.store.record(env('alice', 'bob', 'dup-1', { body: 'changed' }))
      assert.deepEqual(again, { offset: first.offset, duplicate: true })
      const other = await fx.store.record(env('carol', 'bob', 'dup-1'))
      assert.equal(other.duplicate, false, 'the same id from another sender is another message')
      const h = await fx.store.history('bob', { limit: 10 })
      assert.equal(h.messages.length, 2)
    })

    it('one id from one sender to two recipients: each is recorded once, and a retry to either is a repeat', async () => {
      fx = await make()
      const toBob = await fx.store.record(env('svc', 'bob', 'note-1'))
      const toCarol = await fx.store.record(env('svc', 'carol', 'note-1'))
      assert.equal(toCarol.duplicate, false, 'another recipient: another message')
      // the retry to bob comes after carol's recording took the message's status
      assert.deepEqual(await fx.store.record(env('svc', 'bob', 'note-1')), {
        offset: toBob.offset,
        duplicate: true,
      })
      assert.deepEqual(await fx.store.record(env('svc', 'carol', 'note-1')), {
        offset: toCarol.offset,
        duplicate: true,
      })
      assert.equal((await fx.store.history('bob', { limit: 10 })).messages.length, 1)
      assert.equal((await fx.store.history('carol', { limit: 10 })).messages.length, 1)
    })

    it('records made in one turn (many senders and recipients, a repeat among them) keep every recipient in order and de-duplicate', async () => {
      fx = await make()
      const sent = Array.from({ length: 600 }, (_, i) => env(`s${i % 7}`, `r${i % 5}`, `t${i}`))
      // the repeat of t3 comes in the same turn as t3 itself, and after it
      const results = await Promise.all([...sent, sent[3]!].map((e) => fx.store.record(e)))
      assert.deepEqual(results[600], { offset: results[3]!.offset, duplicate: true })
      assert.ok(results.slice(0, 600).every((r) => !r.duplicate))
      for (let r = 0; r < 5; r++) {
        const h = await fx.store.history(`r${r}`, { limit: 1000 })
        const ids = sent.filter((e) => e.to === `r${r}`).map((e) => e.id)
        assert.deepEqual(
          h.messages.map((m) => m.id),
          ids,
        )
        assert.deepEqual(
          h.messages.map((m) => m.offset),
          ids.map((id) => results[Number(id.slice(1))]!.offset),
        )
        const offsets = h.messages.map((m) => m.offset!)
        for (let i = 1; i < offsets.length; i++) {
          assert.ok(
            compareOffsets(offsets[i - 1]!, offsets[i]!) < 0,
            "a recipient's offsets follow arrival order",
          )
        }
      }
    })

    it('device-targeted messages are history for that device only', async () => {
      fx = await make()
      await fx.store.record(env('svc', 'dan', 'all-1'))
      await fx.store.record(env('svc', 'dan', 'tab-1', { deviceId: 'tab' }))
      await fx.store.record(env('svc', 'dan', 'phone-1', { deviceId: 'phone' }))
      const ids = async (deviceId?: string) =>
        (await fx.store.history('dan', { limit: 10, deviceId })).messages.map((m) => m.id)
      assert.deepEqual(await ids('phone'), ['all-1', 'phone-1'])
      assert.deepEqual(await ids('tab'), ['all-1', 'tab-1'])
      assert.deepEqual(await ids(undefined), ['all-1', 'tab-1', 'phone-1'])
    })

    it("a page's worth of another device's messages does not hide a later one: the page fills, next is the last one served", async () => {
      fx = await make()
      // more messages for the tablet than one page holds, then one for every device, then more
      // for the tablet: the phone's page must reach past the tablet's to the inbox message
      for (let i = 0; i < 30; i++) await fx.store.record(env('svc', 'fay', `tab-${i}`, { deviceId: 'tab' }))
      const all1 = await fx.store.record(env('svc', 'fay', 'all-1'))
      for (let i = 30; i < 60; i++) await fx.store.record(env('svc', 'fay', `tab-${i}`, { deviceId: 'tab' }))
      const all2 = await fx.store.record(env('svc', 'fay', 'all-2'))
      const last = await fx.store.record(env('svc', 'fay', 'tab-60', { deviceId: 'tab' }))

      const first = await fx.store.history('fay', { after: '0', limit: 10, deviceId: 'phone' })
      assert.deepEqual(
        first.messages.map((m) => m.id),
        ['all-1', 'all-2'],
      )
      // the end of the history was reached: next is past the tablet's last message, so the
      // next page starts after everything read
      assert.equal(first.next, last.offset)
      const done = await fx.store.history('fay', { after: first.next, limit: 10, deviceId: 'phone' })
      assert.deepEqual(done, { messages: [], next: last.offset })

      // a page that fills up stops at its last message: nothing after it is skipped
      const one = await fx.store.history('fay', { after: '0', limit: 1, deviceId: 'phone' })
      assert.deepEqual(
        one.messages.map((m) => m.id),
        ['all-1'],
      )
      assert.equal(one.next, all1.offset)
      const two = await fx.store.history('fay', { after: one.next, limit: 1, deviceId: 'phone' })
      assert.deepEqual(
        two.messages.map((m) => m.id),
        ['all-2'],
      )
      assert.equal(two.next, all2.offset)
    })

    it('history is bounded by length', async () => {
      fx = await make({ historyMaxLen: 10, historyMaxAgeMs: 3600_000, dedupWindowMs: 3600_000 })
      for (let i = 0; i < 400; i++) await fx.store.record(env('alice', 'erin', `n${i}`))
      const h = await fx.store.history('erin', { limit: 1000 })
      // Redis trims approximately (whole stream nodes of 100 entries): between 10 and 10 + 100
      assert.ok(h.messages.length >= 10 && h.messages.length <= 110, `kept ${h.messages.length}`)
      assert.equal(h.messages.at(-1)?.id, 'n399', 'the newest are kept')
    })

    it('receipts: only the recipient marks a message, status only moves forward', async () => {
      fx = await make()
      await fx.store.record(env('alice', 'bob', 'r-1'))
      const base = { from: 'alice', id: 'r-1', ts: Date.now() }
      assert.equal(
        await fx.store.receipt({ ...base, by: 'mallory', deviceId: 'x', status: 'read' }),
        'not-recipient',
      )
      assert.equal(
        await fx.store.receipt({ ...base, id: 'nope', by: 'bob', deviceId: 'x', status: 'read' }),
        'unknown-message',
      )
      assert.equal(
        await fx.store.receipt({ ...base, by: 'bob', deviceId: 'phone', status: 'delivered' }),
        'recorded',
      )
      assert.equal((await fx.store.status('alice', 'r-1'))?.status, 'delivered')
      assert.equal(
        await fx.store.receipt({ ...base, by: 'bob', deviceId: 'phone', status: 'read' }),
        'recorded',
      )
      assert.equal(
        await fx.store.receipt({ ...base, by: 'bob', deviceId: 'phone', status: 'delivered' }),
        'unchanged',
      )
      await fx.store.receipt({ ...base, by: 'bob', deviceId: 'laptop', status: 'delivered' })
      const st = await fx.store.status('alice', 'r-1')
      assert.equal(st?.status, 'read')
      assert.equal(st?.to, 'bob')
      assert.deepEqual(Object.fromEntries(Object.entries(st?.devices ?? {}).map(([d, v]) => [d, v.status])), {
        phone: 'read',
        laptop: 'delivered',
      })
      assert.equal(await fx.store.status('alice', 'unknown'), undefined)
      // one recipient: `recipients` holds it, with what the top-level fields say
      assert.deepEqual(st?.recipients, {
        bob: { offset: st?.offset, status: 'read', devices: st?.devices },
      })
    })

    it('one id to several recipients: each one may send receipts, statuses are kept per recipient, status reports each', async () => {
      fx = await make()
      const toAlice = await fx.store.record(env('svc', 'alice', 'announce-1'))
      const base = { from: 'svc', id: 'announce-1', ts: Date.now() }
      // a receipt before the next recipient is recorded stays
      assert.equal(
        await fx.store.receipt({ ...base, by: 'alice', deviceId: 'phone', status: 'read' }),
        'recorded',
      )
      const toBob = await fx.store.record(env('svc', 'bob', 'announce-1'))
      assert.equal(
        await fx.store.receipt({ ...base, by: 'alice', deviceId: 'laptop', status: 'delivered' }),
        'recorded',
        'the first recipient may still send receipts',
      )
      // both have a device called phone: bob's is not alice's, which was read already
      assert.equal(
        await fx.store.receipt({ ...base, by: 'bob', deviceId: 'phone', status: 'delivered' }),
        'recorded',
      )
      assert.equal(
        await fx.store.receipt({ ...base, by: 'alice', deviceId: 'phone', status: 'delivered' }),
        'unchanged',
      )
      assert.equal(
        await fx.store.receipt({ ...base, by: 'mallory', deviceId: 'phone', status: 'read' }),
        'not-recipient',
      )
      const st = await fx.store.status('svc', 'announce-1')
      const statuses = (devices: Record<string, { status: string }>) =>
        Object.fromEntries(Object.entries(devices).map(([d, v]) => [d, v.status]))
      assert.deepEqual(
        Object.fromEntries(
          Object.entries(st?.recipients ?? {}).map(([to, r]) => [
            to,
            [r.offset, r.status, statuses(r.devices)],
          ]),
        ),
        {
          alice: [toAlice.offset, 'read', { phone: 'read', laptop: 'delivered' }],
          bob: [toBob.offset, 'delivered', { phone: 'delivered' }],
        },
      )
      // the top-level fields are those of the recipient recorded last, as for one recipient
      assert.deepEqual(
        [st?.to, st?.offset, st?.status, statuses(st?.devices ?? {})],
        ['bob', toBob.offset, 'delivered', { phone: 'delivered' }],
      )
      // a retry to the first recipient is still a repeat, and changes nothing
      assert.deepEqual(await fx.store.record(env('svc', 'alice', 'announce-1')), {
        offset: toAlice.offset,
        duplicate: true,
      })
      assert.deepEqual(await fx.store.status('svc', 'announce-1'), st)
    })
  })
}
