// Where a core's time goes, from `perf script` output of a cpu-clock profile: every sample is one
// period of the core's wall clock, and its kernel call chain says which part of the relay (or of
// the veth set-up around it) the core was doing. Pure code: the bench that records the profile is
// relay-core-profile.ts.

/** What the relay core was doing in a sample, in the order a sample is tested against them. */
export const CORE_ACTIVITIES = [
  'receivers',
  'relay-processes',
  'xdp-programs',
  'replication',
  'input',
  'idle',
  'other',
] as const;
export type CoreActivity = (typeof CORE_ACTIVITIES)[number];

export const CORE_ACTIVITY_LABELS: Record<CoreActivity, string> = {
  idle: 'idle',
  receivers: "the receiver host's receive work (veth runs it on the sending core)",
  'relay-processes': "the relay's processes (mcrd and its worker, smcrouted)",
  'xdp-programs': "mcr's XDP programs and the helpers they call",
  replication: 'replication and transmit (devmap clone and queue, multicast forwarding, veth xmit)',
  input: "the input's receive (NAPI poll, GRO, IP input up to the relay)",
  other: 'other (timers, RCU, the profiler)',
};

/** One sample: the sampled thread and its call chain, innermost frame first. */
export interface Sample {
  pid: number;
  comm: string;
  stack: string[];
}

/**
 * Parses `perf script -F pid,comm,sym` style output (a header line, then one indented
 * "address symbol" line per frame, then a blank line). The header is "comm pid" with a comm
 * that may contain spaces.
 */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  let current: Sample | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (current) samples.push(current);
      current = null;
      continue;
    }
    if (!/^\s/.test(line)) {
      if (current) samples.push(current);
      const header = /^(.*\S)\s+(\d+)\s*$/.exec(line);
      current = header ? { comm: header[1]!, pid: Number(header[2]), stack: [] } : null;
      continue;
    }
    const frame = /^\s+[0-9a-f]+\s+(\S+)/.exec(line);
    if (current && frame) current.stack.push(frame[1]!.replace(/\+0x[0-9a-f]+$/, ''));
  }
  if (current) samples.push(current);
  return samples;
}

// A receiver host's veth NAPI poll (XDP path) or the backlog its skbs wait in (kernel
// forwarding) runs from the softirq, while the relay input's NAPI runs in its own thread: so the
// softirq in a chain marks the receivers' work.
const RECEIVER_FRAMES = new Set(['net_rx_action']);
// A devmap broadcast clones the frame per output, queues it and hands bulks to veth; kernel
// forwarding clones the skb per output route and transmits it.
const REPLICATION_FRAMES = new Set([
  'dev_map_enqueue_multi',
  'xdp_do_flush',
  'bq_xmit_all',
  'veth_xdp_xmit',
  'ip_mr_forward',
  'ipmr_queue_xmit',
  'dev_queue_xmit',
  '__dev_queue_xmit',
  'veth_xmit',
]);
const INPUT_FRAMES = new Set(['napi_threaded_poll', 'napi_threaded_poll_loop']);
// Where an idle core halts, by hypervisor and idle driver.
const IDLE_LEAVES = new Set([
  'pv_native_safe_halt',
  'native_safe_halt',
  'default_idle',
  'acpi_safe_halt',
  'mwait_idle_with_hints',
  'intel_idle',
  'poll_idle',
  'cpu_idle_poll',
]);

/** Which part of the relay a sample belongs to; `relayPids` are the relay's own processes. */
export function classifySample(sample: Sample, relayPids: ReadonlySet<number>): CoreActivity {
  const { stack } = sample;
  if (stack.some((f) => RECEIVER_FRAMES.has(f))) return 'receivers';
  if (relayPids.has(sample.pid)) return 'relay-processes';
  // JIT-compiled programs are named bpf_prog_<tag>_<name>; the egress program runs inside the
  // devmap's bulk transmit, and is counted as a program rather than as replication.
  if (stack.some((f) => f.startsWith('bpf_prog_'))) return 'xdp-programs';
  if (stack.some((f) => REPLICATION_FRAMES.has(f))) return 'replication';
  if (stack.some((f) => INPUT_FRAMES.has(f))) return 'input';
  // Work done in an interrupt that came while the core idled has do_idle deeper in its chain too,
  // so idle is what is left once every kind of work above was ruled out.
  if (stack.includes('do_idle') && IDLE_LEAVES.has(stack[0] ?? '')) return 'idle';
  return 'other';
}

/** Samples per activity. */
export type CoreProfile = Record<CoreActivity, number>;

export function profileSamples(samples: Sample[], relayPids: ReadonlySet<number>): CoreProfile {
  const profile = Object.fromEntries(CORE_ACTIVITIES.map((a) => [a, 0])) as CoreProfile;
  for (const s of samples) profile[classifySample(s, relayPids)]++;
  return profile;
}

/** The leaf functions that took the most samples in one activity: what to look at next. */
export function topFunctions(
  samples: Sample[],
  relayPids: ReadonlySet<number>,
  activity: CoreActivity,
  count: number,
): { name: string; samples: number }[] {
  const byName = new Map<string, number>();
  for (const s of samples) {
    if (classifySample(s, relayPids) !== activity) continue;
    const leaf = s.stack[0] ?? '[unknown]';
    byName.set(leaf, (byName.get(leaf) ?? 0) + 1);
  }
  return [...byName]
    .map(([name, n]) => ({ name, samples: n }))
    .sort((a, b) => b.samples - a.samples)
    .slice(0, count);
}
