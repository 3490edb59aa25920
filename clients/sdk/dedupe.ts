/** Messages already handed to the application, by (from, id); bounded, oldest forgotten first. */
export class SeenSet {
  private readonly keys = new Set<string>()

  constructor(private readonly max = 10_000) {}

  /** True the first time (from, id) is offered, false for every repeat. */
  first(from: string, id: string): boolean {
    const key = `${from}\n${id}`
    if (this.keys.has(key)) return false
    this.keys.add(key)
    if (this.keys.size > this.max) this.keys.delete(this.keys.values().next().value as string)
    return true
  }
}

/** Stream offsets `<ms>-<seq>` compare numerically, part by part. */
export function compareOffsets(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}
