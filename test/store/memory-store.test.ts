import { MemoryPresenceStore } from '../../services/presence/memory-store.js'
import { presenceStoreContract } from './contract.js'

presenceStoreContract('memory', async () => ({
  store: new MemoryPresenceStore(),
  cleanup: async () => {},
}))
