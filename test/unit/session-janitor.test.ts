/**
 * One janitor pass goes through every idle session, a page at a time: it expires all that are
 * due and trims the queues of all the others, however many there are (the Redis registry's
 * paging is proven in test/messaging/sessions.test.ts).
 */
import assert from 'node:assert/strict'
import { MemorySessionRegistry, SessionJanitor, type SessionStorage } from '../../broker/sessions.js'
import { LogCapture } from '../harness/logs.js'

/** Records what the janitor asks of the session storage. */
function recordingStorage() {
  const dropped: string[] = []
  const pages: string[][] = []
  const storage: SessionStorage = {
    cleanSubscriptions: async () => {},
    dropQueue: async (clientId) => {
      dropped.push(clientId)
    },
    trimQueues: async (clientIds) => {
      pages.push(clientIds)
    },
  }
  return { storage, dropped, pages }
}

describe('session janitor (SessionJanitor)', () => {
  it('a pass expires every session idle too long and trims every other, page by page', async () => {
    const registry = new MemorySessionRegistry()
    // 1,200 sessions idle since t=0..1199, then 1,300 more recent ones
    for (let i = 0; i < 2500; i++) await registry.idle(`u${i}/d`, i < 1200 ? i : 10_000 + i)
    const { storage, dropped, pages } = recordingStorage()
    const janitor = new SessionJanitor(
      registry,
      storage,
      { maxIdleMs: 5000, maxQueue: 5 },
      new LogCapture().logger,
    )
    assert.equal(await janitor.sweep(7000), 1200, 'all those idle since before t=2000')
    assert.equal(new Set(dropped).size, 1200)
    const trimmed = pages.flat()
    assert.equal(trimmed.length, 1300, 'each remaining idle session trimmed once')
    assert.deepEqual(new Set(trimmed), new Set(Array.from({ length: 1300 }, (_, i) => `u${1200 + i}/d`)))
    assert.ok(pages.length > 1 && pages.every((p) => p.length <= 500), 'in bounded pages')
  })
})
