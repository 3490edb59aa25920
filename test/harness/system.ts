/**
 * Programs from Debian the suite needs (redis-server, mosquitto_sub): installed with apt-get
 * when missing and running as root; otherwise one line says what to install.
 */
import { execFileSync } from 'node:child_process'

const checked = new Set<string>()

export function hasCommand(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export function ensureInstalled(cmd: string, debianPackage: string): void {
  if (checked.has(cmd) || hasCommand(cmd)) {
    checked.add(cmd)
    return
  }
  if (process.getuid?.() === 0 && hasCommand('apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env })
    execFileSync('apt-get', ['install', '-y', '-qq', debianPackage], { stdio: 'inherit', env })
    checked.add(cmd)
    return
  }
  throw new Error(
    `${cmd} is not installed: install it (Debian: apt-get install ${debianPackage}) and run again`,
  )
}
