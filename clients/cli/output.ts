/**
 * Output helpers for the CLI: errors say what to do next and exit non-zero; anything that takes
 * over a second says what it is waiting for; colours only on a terminal (and never with NO_COLOR).
 */
export function fail(message: string, code = 1): never {
  process.stderr.write(`herald: ${message}\n`)
  process.exit(code)
}

/** Where a URL points, for messages: `127.0.0.1:1883`. */
function hostPort(url: string): string {
  try {
    const u = new URL(url)
    return u.port ? `${u.hostname}:${u.port}` : u.hostname
  } catch {
    return url
  }
}

/**
 * Turns low-level connection errors into advice. `what` names the thing ("Herald's MQTT
 * listener"), `url` where it was looked for, `setting` how to point elsewhere.
 */
export function explain(err: unknown, what: string, url = '', setting = ''): string {
  const e = err as { code?: string | number; message?: string; cause?: { code?: string } }
  const code = e?.code ?? e?.cause?.code
  const where = url ? ` at ${url}` : ''
  const elsewhere = setting ? ` (pass ${setting} if it listens elsewhere)` : ''
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot reach ${what}${where}: connection refused — is Herald running on ${hostPort(url)}? Start it with \`npm start\`${elsewhere}`
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${url || what} — check the host name${elsewhere}`
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach ${what}${where} (${code}) — is the host up and the port open?`
    case 'ECONNRESET':
    case 'EPIPE':
      return `${what}${where} closed the connection — is that the right port? (MQTT 1883, WebSocket 8083, HTTP 8080)`
    default:
      return `${what}${where}: ${e?.message ?? String(err)}`
  }
}

/**
 * Runs `work`; when it takes longer than a second, says so on stderr (a spinner on a terminal)
 * and how long it took. stdout stays clean for pipes.
 */
export async function withProgress<T>(label: string, work: Promise<T>, afterMs = 1000): Promise<T> {
  const started = Date.now()
  const tty = process.stderr.isTTY === true
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']
  let frame = 0
  let shown = false
  let spin: NodeJS.Timeout | undefined
  const show = setTimeout(() => {
    shown = true
    if (!tty) {
      process.stderr.write(`herald: ${label}…\n`)
      return
    }
    spin = setInterval(() => {
      process.stderr.write(
        `\r${frames[frame++ % frames.length]} ${label}… ${((Date.now() - started) / 1000).toFixed(1)} s`,
      )
    }, 100)
  }, afterMs)
  try {
    return await work
  } finally {
    clearTimeout(show)
    clearInterval(spin)
    if (shown) {
      const took = `${((Date.now() - started) / 1000).toFixed(1)} s`
      process.stderr.write(tty ? `\r\u001b[K✓ ${label} (${took})\n` : `herald: ${label}: ${took}\n`)
    }
  }
}

const useColor = () => process.stdout.isTTY === true && !process.env.NO_COLOR

/** ANSI colours for terminals; plain text elsewhere. */
export const paint = {
  green: (s: string) => (useColor() ? `\u001b[32m${s}\u001b[0m` : s),
  red: (s: string) => (useColor() ? `\u001b[31m${s}\u001b[0m` : s),
  yellow: (s: string) => (useColor() ? `\u001b[33m${s}\u001b[0m` : s),
  dim: (s: string) => (useColor() ? `\u001b[2m${s}\u001b[0m` : s),
  bold: (s: string) => (useColor() ? `\u001b[1m${s}\u001b[0m` : s),
}

/** Local wall-clock time with milliseconds, `14:03:07.123`. */
export function clock(ms = Date.now()): string {
  const d = new Date(ms)
  const p = (n: number, w = 2) => String(n).padStart(w, '0')
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`
}

/** "just now", "5 min ago", "3 h ago", "2 d ago". */
export function ago(ms: number, now = Date.now()): string {
  if (!ms) return 'never'
  const s = Math.max(0, Math.round((now - ms) / 1000))
  if (s < 10) return 'just now'
  if (s < 60) return `${s} s ago`
  if (s < 3600) return `${Math.floor(s / 60)} min ago`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`
  return `${Math.floor(s / 86_400)} d ago`
}
