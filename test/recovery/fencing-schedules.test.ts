/**
 * Fencing and gap repair under a fault-injecting bus: 1,000 seeded random schedules (see
 * schedule.ts). Set HERALD_FENCING_SCHEDULES for more.
 */
import assert from 'node:assert/strict'
import { runSchedule } from './schedule.js'

const SCHEDULES = Number(process.env.HERALD_FENCING_SCHEDULES ?? 1000)

describe('fencing under a fault-injecting bus', function () {
  this.timeout(120_000)

  it(`${SCHEDULES} seeded random schedules end equal to the truth, with no false offline edge`, async () => {
    const failures: string[] = []
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      const failure = await runSchedule(seed)
      if (failure) failures.push(failure)
    }
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${SCHEDULES} schedules failed`)
  })
})
