import { PerformanceObserver } from 'node:perf_hooks';
import type { WorkerProcessHealth } from '../protocol/control-api.js';

/**
 * Watches this worker's garbage collector and memory: the data path allocates nothing per
 * packet, and these figures show it (a steady worker collects rarely, and briefly).
 */
export class ProcessHealth {
  private count = 0;
  private totalMs = 0;
  private maxMs = 0;
  private over1Ms = 0;
  private readonly observer: PerformanceObserver;

  constructor() {
    this.observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        this.count++;
        this.totalMs += entry.duration;
        if (entry.duration > this.maxMs) this.maxMs = entry.duration;
        if (entry.duration > 1) this.over1Ms++;
      }
    });
    this.observer.observe({ entryTypes: ['gc'] });
  }

  snapshot(): WorkerProcessHealth {
    return {
      rssBytes: process.memoryUsage.rss(),
      gcCount: this.count,
      gcTotalMs: this.totalMs,
      gcMaxPauseMs: this.maxMs,
      gcPausesOver1Ms: this.over1Ms,
      cpuSeconds: cpuSeconds(process.cpuUsage()),
    };
  }

  stop(): void {
    this.observer.disconnect();
  }
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}
