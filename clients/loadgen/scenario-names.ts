/**
 * The bench's scenarios by name, and those with a `--virtual` form: what the `herald` command's
 * help needs, without loading the load generator (bench.ts holds the scenarios, keyed by these).
 */
export const SCENARIO_NAMES = [
  'connect',
  'churn',
  'idle',
  'detect',
  'messages',
  'backlog',
  'resync',
  'node-death',
] as const

export type ScenarioName = (typeof SCENARIO_NAMES)[number]

export const VIRTUAL_SCENARIOS: readonly ScenarioName[] = ['idle', 'resync', 'node-death']

export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(name)
}
