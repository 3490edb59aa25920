/** Root hooks for the whole mocha run (loaded with --require). */
import { removeTestDataDirs } from './process.js'
import { stopSharedRedis } from './shared-redis.js'

export const mochaHooks = {
  async afterAll() {
    await stopSharedRedis()
    removeTestDataDirs()
  },
}
