import assert from 'node:assert/strict'
import type { Envelope } from '../../services/core/envelope.js'
import { deliveredJson, historyJson } from '../../services/messaging/store.js'

describe('envelope JSON: as a history keeps it, and as it is delivered', () => {
  const envelopes: Envelope[] = [
    { id: 'a1', body: { text: 'hi', n: [1, 2] }, from: 'alice', to: 'bob', ts: 1700000000000 },
    { id: 'a2', body: 'x"}\\', type: 'chat', from: 'al"ice', to: 'bob', ts: 1, deviceId: 'phone' },
    { id: 'a3', body: null, from: 'alice', to: 'bob', ts: 2, offset: '5-0' },
  ]

  it('the history form has no offset', () => {
    for (const env of envelopes) assert.equal('offset' in JSON.parse(historyJson(env)), false)
  })

  it('the delivered form is the envelope with the offset it was recorded at', () => {
    for (const env of envelopes) {
      const delivered = JSON.parse(deliveredJson(historyJson(env), '1700000000123-7')) as Envelope
      assert.deepEqual(delivered, { ...env, offset: '1700000000123-7' })
    }
  })
})
