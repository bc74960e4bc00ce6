import { collectDefaultMetrics, Registry } from 'prom-client';
import type { StatsView } from '../protocol/control-api.js';
import { MetricFamilies } from './metrics-families.js';

/**
 * prom-client's default metrics that are gauges named like counters (…_total): `promtool check
 * metrics` warns about them, and the same numbers are in nodejs_active_handles,
 * nodejs_active_requests and nodejs_active_resources, by type.
 */
const MISNAMED_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export interface MetricsExpositionOptions {
  /** The supervisor's stats snapshot, as stats.get answers it (a throw fails the scrape). */
  stats: () => StatsView | Promise<StatsView>;
  version: string;
  /**
   * The supervisor's own process metrics (prom-client's defaults, under their standard names
   * process_… and nodejs_…). Off in tests that compare the exposition exactly.
   */
  processMetrics?: boolean;
  /** A finished collection's text is served again for this long (default REUSE_MS). */
  reuseMs?: number;
}

/**
 * However many clients scrape, and however fast, mcrd collects at most four times a second: the
 * endpoint is reachable by whoever can reach its address, and a collection costs the supervisor
 * (and every worker) CPU that forwarding shares. Prometheus scrapes seconds apart, so it always
 * gets a fresh collection.
 */
export const REUSE_MS = 250;

/**
 * The text a scrape of /metrics returns. The supervisor's counters are collected when a scrape
 * asks for them, and scrapes that arrive while a collection runs share it and its result: a
 * burst of scrapers costs mcrd one collection, not one each.
 *
 * The supervisor's own process metrics keep the names every Prometheus exporter uses
 * (process_cpu_seconds_total, process_resident_memory_bytes, …), because they describe the
 * process being scraped: dashboards and alerts written for any exporter work unchanged. The
 * workers are other processes, so theirs are mcr_worker_… with a worker label.
 */
export class MetricsExposition {
  readonly registry = new Registry();
  private readonly families: MetricFamilies;
  private readonly options: MetricsExpositionOptions;
  private inflight: Promise<string> | undefined;
  private last: { text: string; at: number } | undefined;

  constructor(options: MetricsExpositionOptions) {
    this.options = options;
    this.families = new MetricFamilies(this.registry);
    if (options.processMetrics !== false) {
      // The event-loop delay monitor wakes the supervisor at this period for as long as mcrd runs;
      // prom-client's 10 ms would be 100 wakeups a second on CPUs the workers are pinned to.
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 100 });
      for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);
    }
  }

  /** The content type of render()'s text (Prometheus' text format 0.0.4). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition; one collection for all the scrapes that ask while it runs, or just after. */
  render(): Promise<string> {
    const reuseMs = this.options.reuseMs ?? REUSE_MS;
    if (this.last && performance.now() - this.last.at < reuseMs) return Promise.resolve(this.last.text);
    this.inflight ??= this.collect().then(
      (text) => {
        this.inflight = undefined;
        this.last = { text, at: performance.now() };
        return text;
      },
      (err: unknown) => {
        this.inflight = undefined;
        throw err;
      },
    );
    return this.inflight;
  }

  private async collect(): Promise<string> {
    const started = process.hrtime.bigint();
    const view = await this.options.stats();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.families.fill(view, { version: this.options.version, node: process.version }, seconds);
    return this.registry.metrics();
  }
}
