import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { HERALD_NODE_FLAGS } from '../../clients/cli/node-flags.js'

/** The repository root, from dist/test/unit. */
const root = new URL('../../../', import.meta.url)
const read = (path: string) => readFileSync(new URL(path, root), 'utf8')

describe('the Node options Herald runs with (clients/cli/node-flags.ts)', () => {
  const flags = HERALD_NODE_FLAGS.join(' ')

  it('npm start runs the server with them', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
    assert.match(pkg.scripts.start!, new RegExp(`node ${flags} dist/clients/cli/herald\\.js start$`))
  })

  it('the hand-made cluster of docs/cluster.md exports them', () => {
    assert.ok(read('docs/cluster.md').includes(`export NODE_OPTIONS=${flags}`))
  })

  it('Node takes them: the young generation grows past the default 2 × 16 MB', () => {
    const young = execFileSync(
      process.execPath,
      [
        ...HERALD_NODE_FLAGS,
        '-e',
        // objects of which some survive make V8 grow the young generation to its maximum
        `const keep = []; for (let i = 0; i < 3e6; i++) { const o = { i, a: [i] }; if (i % 10 === 0) keep.push(o) }
         const s = require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
         process.stdout.write(String(s.space_size))`,
      ],
      { encoding: 'utf8' },
    )
    // Node 20's default stops at 2 × 16 MB
    assert.ok(Number(young) > 32 * 1024 * 1024, `new space ${young} bytes`)
  })
})
