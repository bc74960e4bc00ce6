// Send and receive timestamps for probes, in microseconds since the Unix epoch.
//
// performance.timeOrigin is the wall clock sampled once at process start and performance.now()
// is the monotonic time since then, so their sum has microsecond resolution and agrees across
// processes on one host (network namespaces share the clock). Date.now() would only give
// milliseconds, too coarse for one-way latency over veth.
export function wallClockUs(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}
