import { Counter, Gauge, type Registry } from 'prom-client';

type Labels<N extends string> = Partial<Record<N, string | number>>;
type Values<N extends string> = { labels: Labels<N>; value: number }[];

/**
 * prom-client metrics whose series are a snapshot's, replaced as a whole on every scrape. They
 * hand their list to the registry as it is: prom-client's own bookkeeping (a hash of every
 * label set, an entry per series kept between scrapes) is what a scrape of mirrored counters
 * does not need, and it cost a third of the rendering (measured: 10-12 ms down to 7-8.5 ms
 * for 51 rules of two outputs). The registry still names, escapes and formats every series.
 */
export interface SnapshotMetric<N extends string> {
  /** One series of the next scrape. */
  put(labels: Labels<N>, value: number): void;
  /** Forgets every series: a rule, output or worker that is gone disappears. */
  clear(): void;
}

export class SnapshotCounter<N extends string> extends Counter<N> implements SnapshotMetric<N> {
  private values: Values<N> = [];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly N[]) {
    super({ name, help, labelNames, registers: [registry] });
  }

  /** A counter mirrored from mcrd's own count; a value that cannot be a count is left out. */
  put(labels: Labels<N>, value: number): void {
    if (Number.isFinite(value) && value >= 0) this.values.push({ labels, value });
  }

  clear(): void {
    this.values = [];
  }

  override async get(): ReturnType<Counter<N>['get']> {
    return { ...(await super.get()), values: this.values };
  }
}

export class SnapshotGauge<N extends string> extends Gauge<N> implements SnapshotMetric<N> {
  private values: Values<N> = [];

  constructor(registry: Registry, name: string, help: string, labelNames: readonly N[]) {
    super({ name, help, labelNames, registers: [registry] });
  }

  put(labels: Labels<N>, value: number): void {
    if (!Number.isNaN(value)) this.values.push({ labels, value });
  }

  clear(): void {
    this.values = [];
  }

  override async get(): ReturnType<Gauge<N>['get']> {
    return { ...(await super.get()), values: this.values };
  }
}
