import type { RuleStatsView, StatsView, WorkerStatsView } from '../protocol/control-api.js';

// What mcrctl top shows, computed from stats.get snapshots without any rendering: rates come
// from mcrd (rates over its last interval); drops per second from the difference between this
// snapshot and the one before, since mcrd keeps drop totals only.

/** A stats.get answer and when it arrived (ms on this process's monotonic clock). */
export interface Snapshot {
  stats: StatsView;
  at: number;
}

export type SortKey = 'rate' | 'name' | 'drops';
export const SORT_KEYS: readonly SortKey[] = ['rate', 'name', 'drops'];

/** The sort order after `key`, for the key that cycles through them. */
export function nextSortKey(key: SortKey): SortKey {
  return SORT_KEYS[(SORT_KEYS.indexOf(key) + 1) % SORT_KEYS.length]!;
}

export interface RuleRow {
  id: string;
  /** The rule's name, or its id when it has none. */
  label: string;
  /** "in0 239.1.1.1:5000" (with "vlan N" or the source where the rule has one). */
  input: string;
  inPps: number;
  /** UDP payload bits per second. */
  inBitRate: number;
  /** Copies per second, all outputs together. */
  outPps: number;
  outBitRate: number;
  /** Input packets relayed to no output, since mcrd started (see ruleDrops). */
  drops: number;
  /** Null until there are two snapshots to compare. */
  dropsPerSecond: number | null;
  /** Output copies not sent, since mcrd started (see copyErrors). */
  copyErrors: number;
  /** RTP sequence numbers that never arrived, for a rule with the rtp option; null without. */
  rtpLost: number | null;
  /** Seconds since the last packet matched, by mcrd's clock; null: never. */
  lastPacketAge: number | null;
  state: RuleStatsView['state'];
  reason: string | null;
}

export interface WorkerRow {
  id: number;
  pid: number | null;
  state: WorkerStatsView['state'];
  /** Share of one CPU, in percent. */
  cpuPercent: number;
  framesPerSecond: number;
  /** Frames taken but not forwarded (every reason), since mcrd started. */
  dropped: number;
  ringDrops: number;
  restarts: number;
  rssBytes: number | null;
}

export interface InterfaceRow {
  name: string;
  rxDropped: number;
  rxMissed: number;
  txDropped: number;
  txErrors: number;
  /** All four together, per second; null until there are two snapshots. */
  dropsPerSecond: number | null;
}

export interface Totals {
  /** Frames per second the workers took from their rings, matched or not. */
  inPps: number;
  /** Copies per second, every output of every rule. */
  outPps: number;
  /** Frames the workers dropped (any reason, ring drops included), since mcrd started. */
  drops: number;
  dropsPerSecond: number | null;
  workers: number;
  workersRunning: number;
  /** Worker drops by reason, all workers together, largest first. */
  dropsByReason: [string, number][];
}

export interface TopModel {
  /** mcrd's wall clock when it answered (ISO 8601). */
  time: string;
  rateInterval: number;
  totals: Totals;
  rules: RuleRow[];
  workers: WorkerRow[];
  interfaces: InterfaceRow[];
}

const sum = (values: Iterable<number>): number => {
  let total = 0;
  for (const v of values) total += v;
  return total;
};

/**
 * Input packets a rule matched and relayed to no output at all (own_source, ttl_expired,
 * no_output, egress_failed): comparable with its input rate.
 */
export function ruleDrops(rule: RuleStatsView): number {
  return sum(Object.values(rule.counters.drops));
}

/**
 * Copies its outputs did not send (the kernel refused them, or the TTL ran out), also those of
 * packets whose other copies went out.
 */
export function copyErrors(rule: RuleStatsView): number {
  return sum(rule.counters.outputs.map((o) => sum(Object.values(o.errors)) + o.ttlExpired));
}

/** Frames a worker took and did not forward, and those its ring could not hold. */
export function workerDrops(worker: WorkerStatsView): number {
  return worker.counters.framesSeen - worker.counters.forwarded + worker.counters.ringDrops;
}

function interfaceDrops(i: InterfaceRow): number {
  return i.rxDropped + i.rxMissed + i.txDropped + i.txErrors;
}

/**
 * Per second between two totals, or null: no earlier snapshot, too little time between them,
 * or a total that went backwards (mcrd restarted).
 */
export function perSecond(now: number, before: number | undefined, seconds: number): number | null {
  if (before === undefined || seconds < 0.05 || now < before) return null;
  return (now - before) / seconds;
}

function describeInput(rule: RuleStatsView): string {
  const vlan = rule.input.vlan === null ? '' : ` vlan ${rule.input.vlan}`;
  const source = rule.input.source === null ? '' : ` from ${rule.input.source}`;
  const rtp = rule.input.rtp ? ' rtp' : '';
  return `${rule.input.interface}${vlan} ${rule.input.group}:${rule.input.port}${source}${rtp}`;
}

/** Seconds between two ISO times (later minus earlier), or null when `earlier` is null. */
function ageSeconds(now: string, earlier: string | null): number | null {
  if (earlier === null) return null;
  const age = (Date.parse(now) - Date.parse(earlier)) / 1000;
  return Number.isFinite(age) ? Math.max(0, age) : null;
}

export function ruleRows(now: Snapshot, before: Snapshot | undefined): RuleRow[] {
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  const earlier = new Map(before?.stats.rules.map((r) => [r.id, ruleDrops(r)]));
  return now.stats.rules.map((r) => {
    const drops = ruleDrops(r);
    return {
      id: r.id,
      label: r.name ?? r.id,
      input: describeInput(r),
      inPps: r.rates.packetsIn,
      inBitRate: r.rates.bytesIn * 8,
      outPps: sum(r.rates.outputs),
      outBitRate: sum(r.rates.outputBytes) * 8,
      drops,
      dropsPerSecond: perSecond(drops, earlier.get(r.id), seconds),
      copyErrors: copyErrors(r),
      rtpLost: r.counters.rtp?.lost ?? null,
      lastPacketAge: ageSeconds(now.stats.time, r.counters.lastPacketAt),
      state: r.state,
      reason: r.reason,
    };
  });
}

/** Rules in the chosen order; ties go by label, so rows do not swap places between refreshes. */
export function sortRules(rows: RuleRow[], key: SortKey): RuleRow[] {
  const byLabel = (a: RuleRow, b: RuleRow): number =>
    a.label < b.label ? -1 : a.label > b.label ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  const compare: Record<SortKey, (a: RuleRow, b: RuleRow) => number> = {
    rate: (a, b) => b.inPps - a.inPps || byLabel(a, b),
    name: byLabel,
    drops: (a, b) => (b.dropsPerSecond ?? 0) - (a.dropsPerSecond ?? 0) || b.drops - a.drops || byLabel(a, b),
  };
  return [...rows].sort(compare[key]);
}

export function workerRows(stats: StatsView): WorkerRow[] {
  return stats.workers.map((w) => ({
    id: w.id,
    pid: w.pid,
    state: w.state,
    cpuPercent: w.rates.cpu * 100,
    framesPerSecond: w.rates.framesSeen,
    dropped: w.counters.framesSeen - w.counters.forwarded,
    ringDrops: w.counters.ringDrops,
    restarts: w.restarts,
    rssBytes: w.health?.rssBytes ?? null,
  }));
}

export function interfaceRows(now: Snapshot, before: Snapshot | undefined): InterfaceRow[] {
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  const rows = (stats: StatsView): InterfaceRow[] =>
    stats.interfaces.map((i) => ({
      name: i.name,
      rxDropped: i.rxDropped,
      rxMissed: i.rxMissed,
      txDropped: i.txDropped,
      txErrors: i.txErrors,
      dropsPerSecond: null,
    }));
  const earlier = new Map(before ? rows(before.stats).map((i) => [i.name, interfaceDrops(i)]) : []);
  return rows(now.stats).map((i) => ({
    ...i,
    dropsPerSecond: perSecond(interfaceDrops(i), earlier.get(i.name), seconds),
  }));
}

export function totals(now: Snapshot, before: Snapshot | undefined): Totals {
  const seconds = before ? (now.at - before.at) / 1000 : 0;
  const workers = now.stats.workers;
  const drops = sum(workers.map(workerDrops));
  const reasons = new Map<string, number>();
  for (const w of workers) {
    for (const [reason, n] of Object.entries(w.counters.dropsByReason)) {
      if (n > 0) reasons.set(reason, (reasons.get(reason) ?? 0) + n);
    }
  }
  const ring = sum(workers.map((w) => w.counters.ringDrops));
  if (ring > 0) reasons.set('ring_full', ring);
  return {
    inPps: sum(workers.map((w) => w.rates.framesSeen)),
    outPps: sum(now.stats.rules.map((r) => sum(r.rates.outputs))),
    drops,
    dropsPerSecond: perSecond(
      drops,
      before ? sum(before.stats.workers.map(workerDrops)) : undefined,
      seconds,
    ),
    workers: workers.length,
    workersRunning: workers.filter((w) => w.state === 'running').length,
    dropsByReason: [...reasons].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)),
  };
}

/** Everything top shows, from the newest snapshot and the one before it (if any). */
export function topModel(now: Snapshot, before: Snapshot | undefined, sort: SortKey): TopModel {
  return {
    time: now.stats.time,
    rateInterval: now.stats.rateInterval,
    totals: totals(now, before),
    rules: sortRules(ruleRows(now, before), sort),
    workers: workerRows(now.stats),
    interfaces: interfaceRows(now, before),
  };
}
