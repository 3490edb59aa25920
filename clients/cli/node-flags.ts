/**
 * The Node options Herald's servers run with: `npm start` and compose.yaml carry them,
 * docs/cluster.md exports them as NODE_OPTIONS, the test harness starts Herald with them, and
 * the bench starts every Node system under test with them (bare Aedes too), so its ratios
 * compare code, not tuning. test/unit/node-flags.test.ts and test/cluster/compose.test.ts
 * hold the copies to this list. (Not
 * the bin's shebang: `env -S` is not everywhere, BusyBox lacks it.)
 *
 * `--max-semi-space-size=64`: V8's young generation grows to 2 × 64 MB instead of 2 × 16 MB.
 * A connect or a QoS 1 message leaves objects that live a few milliseconds (pending Redis
 * replies, autopipelines, packets in flight); with the default size a scavenge comes every few
 * hundred connects and copies them, then promotes them to the old space, where they wait for a
 * full collection. Measured in docs/benchmarks.md (2026-12-03): scavenge time −30%, RSS of
 * 100k idle connections −22% in memory mode. The price: one scavenge takes about twice as long
 * (median ~14 ms against ~7 on that machine), a third as often. `--max-semi-space-size=16`
 * after these restores Node's default.
 * Swept again (ninth session): 32 reads better on the connect path (presence p99 at 500/s,
 * CPU per connect) and worse on QoS 1 (CPU per message at max); neither wins both, 64 stays.
 */
export const HERALD_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=64']
