/**
 * Latency histograms (hdr-histogram-js): recorded in microseconds in the workers, sent to the
 * parent compressed, merged there, reported in milliseconds.
 */
import * as hdr from 'hdr-histogram-js'

export type Histogram = hdr.Histogram

export function newHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 64,
    autoResize: true,
    lowestDiscernibleValue: 1,
    numberOfSignificantValueDigits: 3,
  })
}

/** Records a latency given in milliseconds (kept in µs). */
export function recordMs(h: Histogram, ms: number): void {
  h.recordValue(Math.max(1, Math.round(ms * 1000)))
}

export function encode(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h)
}

export function decodeInto(target: Histogram, encoded: string): void {
  if (!encoded) return
  target.add(hdr.decodeFromCompressedBase64(encoded, 64, false))
}

export interface LatencySummary {
  count: number
  p50: number
  p99: number
  max: number
  mean: number
}

export function summary(h: Histogram): LatencySummary {
  const ms = (us: number) => Math.round(us) / 1000
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p99: ms(h.getValueAtPercentile(99)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  }
}

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
export function now(): number {
  return performance.timeOrigin + performance.now()
}
