// What one case produced, the median and range over repetitions, the table on stdout and the
// JSON results file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatTable } from '../src/cli/table.js';
import { PLACEMENT_LABELS, type Placement } from './placement.js';
import { SCENARIOS } from './scenarios.js';
import { SYSTEM_LABELS, type SystemName } from './systems.js';
import type { Trial } from './trial.js';

export interface CaseKey {
  scenario: string;
  size: number;
  placement: Placement;
  system: SystemName;
}

/** Worker memory and collections over the saturated part of a case (after warm-up). */
export interface SteadyStateHealth {
  rssMb: number;
  collections: number;
  pausesOver1Ms: number;
  /** The longest pause since the worker started (start-up included). */
  maxPauseSinceStartMs: number;
}

export interface CaseRun extends CaseKey {
  repetition: number;
  /** Set when the system cannot run the scenario, or the case failed. */
  skipped?: string;
  failed?: string;
  fixedLoad?: Trial;
  fullLoad?: Trial;
  lossless?: Trial | null;
  /** The lossless rate is as fast as the generator went (search.ts). */
  generatorBound?: boolean;
  /** The highest rate with loss ≤ 1 % (search.ts), and whether the generator set it. */
  withinOnePercent?: Trial | null;
  withinOnePercentGeneratorBound?: boolean;
  /** Full load: the system forwarded (nearly) all the generator offered. */
  fullLoadGeneratorBound?: boolean;
  /** Overload: the generator could not offer more than the system forwarded. */
  overloadGeneratorBound?: boolean;
  overload?: Trial | null;
  /** The --soak trial: unpaced, long, for collections and memory over time. */
  soak?: Trial | null;
  search?: Trial[];
  health?: SteadyStateHealth | null;
  ringDrops?: number | null;
  /** mcr, XDP: copies the output drivers refused over the saturated trials (xdp_refused). */
  xdpRefused?: number | null;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

export interface CaseSummary extends CaseKey {
  runs: number;
  skipped?: string;
  failed?: string;
  /** Maximum lossless input rate (pps). */
  lossless: Spread | null;
  losslessGeneratorBound: boolean;
  /** Maximum input rate at ≤ 1 % loss (pps). */
  withinOnePercent: Spread | null;
  withinOnePercentGeneratorBound: boolean;
  /** Output pps at the lossless rate. */
  losslessOutput: Spread | null;
  /** Input pps forwarded with the generator unpaced. */
  fullLoadForwarded: Spread | null;
  /** Some repetition's full-load figure was generator-bound. */
  fullLoadGeneratorBound: boolean;
  fullLoadOffered: Spread | null;
  /** Offered rate of the overload trial, as a multiple of the lossless rate. */
  overloadFactor: Spread | null;
  /** Input pps forwarded at twice the lossless rate, as a share of the lossless rate. */
  overloadDelivered: Spread | null;
  overloadGeneratorBound: boolean;
  /** Relay core time per input packet at the fixed load (µs). */
  coreUsPerPacket: Spread | null;
  /** The relay's processes' time per input packet at the fixed load (µs). */
  processUsPerPacket: Spread | null;
  /** The input receive thread's time per input packet at the fixed load (µs). */
  receiveUsPerPacket: Spread | null;
  fixedLoadLoss: Spread | null;
  /** Relay core busy share at the lossless rate. */
  coreBusyAtLossless: Spread | null;
  rssMb: Spread | null;
  gcPausesOver1Ms: Spread | null;
  gcCollections: Spread | null;
}

function keyOf(k: CaseKey): string {
  return `${k.scenario}|${k.size}|${k.placement}|${k.system}`;
}

export function summarize(runs: CaseRun[]): CaseSummary[] {
  const groups = new Map<string, CaseRun[]>();
  for (const r of runs) {
    const list = groups.get(keyOf(r)) ?? [];
    list.push(r);
    groups.set(keyOf(r), list);
  }
  return [...groups.values()].map((list) => {
    const first = list[0]!;
    const done = list.filter((r) => !r.skipped && !r.failed);
    const pick = (f: (r: CaseRun) => number | null | undefined): Spread | null =>
      spread(done.map(f).filter((v): v is number => typeof v === 'number' && Number.isFinite(v)));
    const perPacket = (f: (t: Trial) => number) => (r: CaseRun) =>
      r.fixedLoad ? (f(r.fixedLoad) * 1e6) / r.fixedLoad.sentPps : null;
    return {
      scenario: first.scenario,
      size: first.size,
      placement: first.placement,
      system: first.system,
      runs: list.length,
      ...(first.skipped ? { skipped: first.skipped } : {}),
      ...(list.some((r) => r.failed) ? { failed: list.find((r) => r.failed)!.failed } : {}),
      lossless: pick((r) => r.lossless?.sentPps),
      losslessGeneratorBound: done.some((r) => r.generatorBound),
      withinOnePercent: pick((r) => r.withinOnePercent?.sentPps),
      withinOnePercentGeneratorBound: done.some((r) => r.withinOnePercentGeneratorBound),
      losslessOutput: pick((r) => r.lossless?.outputPps),
      fullLoadForwarded: pick((r) => r.fullLoad?.forwardedPps),
      fullLoadGeneratorBound: done.some((r) => r.fullLoadGeneratorBound),
      fullLoadOffered: pick((r) => r.fullLoad?.sentPps),
      overloadFactor: pick((r) =>
        r.overload && r.lossless ? r.overload.sentPps / r.lossless.sentPps : null,
      ),
      overloadDelivered: pick((r) =>
        r.overload && r.lossless ? r.overload.forwardedPps / r.lossless.sentPps : null,
      ),
      overloadGeneratorBound: done.some((r) => r.overloadGeneratorBound),
      coreUsPerPacket: pick(perPacket((t) => t.relayCoreBusy)),
      processUsPerPacket: pick((r) =>
        r.system === 'kernel' ? null : perPacket((t) => t.relayProcessCpu)(r),
      ),
      receiveUsPerPacket: pick(perPacket((t) => t.receiveThreadCpu)),
      fixedLoadLoss: pick((r) => r.fixedLoad?.loss),
      coreBusyAtLossless: pick((r) => r.lossless?.relayCoreBusy),
      rssMb: pick((r) => r.health?.rssMb),
      gcPausesOver1Ms: pick((r) => r.health?.pausesOver1Ms),
      gcCollections: pick((r) => r.health?.collections),
    };
  });
}

function pps(s: Spread | null, bound = false): string {
  if (!s) return '-';
  const range = s.n > 1 ? ` [${kilo(s.min)}-${kilo(s.max)}]` : '';
  return `${bound ? '≥' : ''}${kilo(s.median)}${range}`;
}

function kilo(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(0)}k` : n.toFixed(0);
}

function percent(s: Spread | null, bound = false): string {
  if (!s) return '-';
  const range = s.n > 1 ? ` [${(s.min * 100).toFixed(0)}-${(s.max * 100).toFixed(0)}]` : '';
  return `${bound ? '≥' : ''}${(s.median * 100).toFixed(0)}%${range}`;
}

function plain(s: Spread | null, digits = 2): string {
  return s ? s.median.toFixed(digits) : '-';
}

/** The table printed at the end of a run (medians, with [min-max] over repetitions). */
export function formatSummary(summaries: CaseSummary[]): string {
  const rows = summaries.map((s) => {
    const scenario = SCENARIOS[s.scenario]?.name ?? s.scenario;
    const head = [scenario, String(s.size), s.placement, SYSTEM_LABELS[s.system]];
    // Reasons go last, so a long one does not widen a figure column.
    if (s.skipped) return [...head, '-', '-', '-', '-', '-', '-', '-', `not run: ${s.skipped}`];
    if (s.failed && !s.lossless)
      return [...head, '-', '-', '-', '-', '-', '-', '-', `failed: ${s.failed.split('\n')[0]}`];
    return [
      ...head,
      pps(s.lossless, s.losslessGeneratorBound),
      pps(s.withinOnePercent, s.withinOnePercentGeneratorBound),
      pps(s.fullLoadForwarded, s.fullLoadGeneratorBound),
      s.overloadDelivered
        ? `${percent(s.overloadDelivered, s.overloadGeneratorBound)} at ${plain(s.overloadFactor, 1)}×`
        : '-',
      `${plain(s.coreUsPerPacket)} / ${s.system === 'kernel' ? '-' : plain(s.processUsPerPacket)} / ${plain(s.receiveUsPerPacket)}`,
      s.rssMb ? s.rssMb.median.toFixed(0) : '-',
      s.gcPausesOver1Ms ? `${plain(s.gcPausesOver1Ms, 0)} of ${plain(s.gcCollections, 0)}` : '-',
      s.failed ? 'some repetitions failed' : '',
    ];
  });
  return formatTable(
    [
      'SCENARIO',
      'BYTES',
      'PLACEMENT',
      'SYSTEM',
      'LOSSLESS IN PPS',
      '≤1% LOSS IN PPS',
      'FULL-LOAD FWD PPS',
      'AT 2× LOSSLESS',
      'µS/PKT CORE/PROC/RX',
      'RSS MB',
      'GC >1MS',
      'NOTE',
    ],
    rows,
  );
}

/** What each of mcr's paths is compared with. */
const COMPARED: Partial<Record<SystemName, readonly SystemName[]>> = {
  'mcr-raw': ['kernel', 'socat', 'mcr-socket'],
  'mcr-xdp': ['kernel', 'mcr-raw'],
};

/**
 * mcr against kernel forwarding, socat and its other path, per scenario, size and placement:
 * ratios of the medians, lossless and at ≤ 1 % loss.
 */
export function formatComparisons(summaries: CaseSummary[]): string[] {
  const lines: string[] = [];
  const find = (k: Omit<CaseKey, 'system'>, system: SystemName) =>
    summaries.find((s) => keyOf(s) === keyOf({ ...k, system }));
  const ratio = (a: Spread | null, b: Spread | null, bound: boolean): string =>
    a && b ? `${(a.median / b.median).toFixed(2)}${bound ? ' (generator-bound)' : ''}` : '-';
  for (const s of summaries) {
    for (const other of COMPARED[s.system] ?? []) {
      const o = find(s, other);
      if (!o?.lossless || !s.lossless) continue;
      const lossless = ratio(s.lossless, o.lossless, s.losslessGeneratorBound || o.losslessGeneratorBound);
      const onePercent = ratio(
        s.withinOnePercent,
        o.withinOnePercent,
        s.withinOnePercentGeneratorBound || o.withinOnePercentGeneratorBound,
      );
      lines.push(
        `${SCENARIOS[s.scenario]?.name ?? s.scenario}, ${s.size} B, ${PLACEMENT_LABELS[s.placement]}: ${SYSTEM_LABELS[s.system]} / ${SYSTEM_LABELS[other]} = ${lossless} lossless, ${onePercent} at ≤1% loss`,
      );
    }
  }
  return lines;
}

export function writeResults(path: string, content: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(content, null, 2)}\n`);
}
