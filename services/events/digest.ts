/**
 * The cheap per-node digest of DESIGN.md: count + XOR of a 32-bit hash of every live fence
 * token. Both sides update it in O(1) per change, so a heartbeat can carry it for free.
 */
export function tokenHash(token: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < token.length; i++) {
    h ^= token.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

export class Digest {
  count = 0
  value = 0

  add(token: string) {
    this.count += 1
    this.value = (this.value ^ tokenHash(token)) >>> 0
  }

  remove(token: string) {
    this.count -= 1
    this.value = (this.value ^ tokenHash(token)) >>> 0
  }

  static of(tokens: Iterable<string>): Digest {
    const d = new Digest()
    for (const t of tokens) d.add(t)
    return d
  }
}
