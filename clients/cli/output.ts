/** Output helpers for the CLI: errors say what to do next and exit non-zero. */
export function fail(message: string, code = 1): never {
  process.stderr.write(`herald: ${message}\n`)
  process.exit(code)
}

/** Turns low-level connection errors into advice. */
export function explain(err: unknown, what: string): string {
  const e = err as NodeJS.ErrnoException & { code?: string | number }
  if (e?.code === 'ECONNREFUSED')
    return `cannot reach ${what}: connection refused — is Herald running (npm start), and is the port right?`
  if (e?.code === 'ENOTFOUND') return `cannot resolve the host of ${what}`
  return `${what}: ${(err as Error)?.message ?? String(err)}`
}
