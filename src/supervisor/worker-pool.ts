import type { Logger } from 'pino';
import type { DataPlaneSettings, SupervisorMessage, WorkerStatsReport } from '../protocol/worker-messages.js';
import { StatsCollector } from './stats-collector.js';
import { WorkerProcess } from './worker-process.js';

export interface WorkerPoolOptions {
  count: number;
  entry: string;
  logLevel: string;
  settings: DataPlaneSettings;
  log: Logger;
  /** Replays the current state (inputs, rules, descriptors) into a worker that just started. */
  sync: (workerId: number) => void;
}

/** Delay before a crashed worker is started again. */
const RESTART_DELAY_MS = 250;

/** Worker slot: the current process of one worker id, its restarts and its counter samples. */
export interface WorkerSlot {
  id: number;
  process: WorkerProcess;
  restarts: number;
  stats: StatsCollector;
}

/**
 * The worker processes. A worker that exits unexpectedly is started again and given the full
 * state anew; its counters start from zero.
 */
export class WorkerPool {
  readonly slots: WorkerSlot[] = [];
  private readonly options: WorkerPoolOptions;
  private stopping = false;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
    for (let id = 0; id < options.count; id++) {
      this.slots.push({ id, process: this.spawn(id), restarts: 0, stats: new StatsCollector() });
    }
  }

  /** Resolves when every worker has said it is ready. */
  ready(timeoutMs: number): Promise<void> {
    const waits = this.slots.map(
      (slot) =>
        new Promise<void>((resolve, reject) => {
          if (slot.process.state === 'running') return resolve();
          const timer = setTimeout(
            () => reject(new Error(`worker ${slot.id} did not start within ${timeoutMs} ms`)),
            timeoutMs,
          );
          slot.process.once('ready', () => {
            clearTimeout(timer);
            resolve();
          });
        }),
    );
    return Promise.all(waits).then(() => undefined);
  }

  /** Sends one message to worker `id`; descriptors are duplicated into it. */
  send(id: number, message: SupervisorMessage, fds: readonly number[] = []): void {
    this.slots[id]?.process.send(message, fds);
  }

  /** Fresh counters from every worker (undefined for one that did not answer in time). */
  async collect(timeoutMs: number): Promise<(WorkerStatsReport | undefined)[]> {
    return Promise.all(this.slots.map((slot) => slot.process.requestStats(timeoutMs)));
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => slot.process.stop(graceMs)));
    for (const slot of this.slots) slot.process.closeChannel();
  }

  private spawn(id: number): WorkerProcess {
    const { entry, logLevel, log, settings } = this.options;
    const worker = new WorkerProcess({ id, entry, logLevel, log });
    worker.once('ready', () => {
      worker.send({ type: 'configure', workerId: id, settings });
      this.options.sync(id);
    });
    worker.on('stats', (report) => this.slots[id]?.stats.record(report));
    worker.once('exit', (code, signal) => this.onExit(id, worker, code, signal));
    return worker;
  }

  private onExit(
    id: number,
    worker: WorkerProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
  ): void {
    worker.closeChannel();
    if (this.stopping) return;
    const slot = this.slots[id]!;
    this.options.log.error(
      { worker: id, code, signal },
      `worker exited unexpectedly; restarting in ${RESTART_DELAY_MS} ms`,
    );
    setTimeout(() => {
      if (this.stopping) return;
      slot.restarts++;
      slot.stats.reset();
      slot.process = this.spawn(id);
    }, RESTART_DELAY_MS);
  }
}
