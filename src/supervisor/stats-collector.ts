import type { RuleCounters } from '../protocol/control-api.js';
import type { WorkerStatsReport } from '../protocol/worker-messages.js';

export interface StatsSample {
  at: number;
  report: WorkerStatsReport;
}

/** Rates need an older sample at least this far back to be meaningful. */
const MIN_RATE_INTERVAL_MS = 200;

/**
 * Keeps the worker's recent counter samples (pushed every second) so a fresh snapshot can be
 * shown with rates: the difference to the newest sample that is old enough, per second.
 */
export class StatsCollector {
  private samples: StatsSample[] = [];

  record(report: WorkerStatsReport, at = Date.now()): void {
    this.samples.push({ at, report });
    if (this.samples.length > 4) this.samples.shift();
  }

  /** The newest sample taken at least MIN_RATE_INTERVAL_MS before `at`. */
  baseline(at: number): StatsSample | undefined {
    for (let i = this.samples.length - 1; i >= 0; i--) {
      if (at - this.samples[i]!.at >= MIN_RATE_INTERVAL_MS) return this.samples[i];
    }
    return undefined;
  }

  latest(): StatsSample | undefined {
    return this.samples[this.samples.length - 1];
  }

  /** Counters restart from zero with a new worker: old samples would give negative rates. */
  reset(): void {
    this.samples = [];
  }
}

/** Per-second rate between two counter values; 0 without a baseline or across a reset. */
export function rate(now: number, before: number | undefined, seconds: number): number {
  if (before === undefined || seconds <= 0 || now < before) return 0;
  return (now - before) / seconds;
}

export function ruleRates(now: RuleCounters, before: RuleCounters | undefined, seconds: number) {
  return {
    packetsIn: rate(now.packetsIn, before?.packetsIn, seconds),
    bytesIn: rate(now.bytesIn, before?.bytesIn, seconds),
    outputs: now.outputs.map((o, i) => rate(o.packets, before?.outputs[i]?.packets, seconds)),
    outputBytes: now.outputs.map((o, i) => rate(o.bytes, before?.outputs[i]?.bytes, seconds)),
  };
}

export function workerRates(
  now: WorkerStatsReport | undefined,
  before: WorkerStatsReport | undefined,
  seconds: number,
) {
  return {
    framesSeen: rate(now?.worker.framesSeen ?? 0, before?.worker.framesSeen, seconds),
    forwarded: rate(now?.worker.forwarded ?? 0, before?.worker.forwarded, seconds),
    cpu: rate(now?.health.cpuSeconds ?? 0, before?.health.cpuSeconds, seconds),
  };
}
