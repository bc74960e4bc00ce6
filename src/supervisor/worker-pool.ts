import type { Logger } from 'pino';
import type { DataPlaneSettings, SupervisorMessage, WorkerStatsReport } from '../protocol/worker-messages.js';
import type { Account } from '../sys/privileges.js';
import { StatsCollector } from './stats-collector.js';
import { WorkerProcess } from './worker-process.js';

export interface WorkerPoolOptions {
  count: number;
  /** CPUs to pin workers to, worker i on cpus[i % length]. */
  cpus: number[];
  account: Account;
  entry: string;
  logLevel: string;
  settings: DataPlaneSettings;
  log: Logger;
  /** Replays the current state (inputs, rules, descriptors) into a worker that just started. */
  sync: (workerId: number) => void;
  /** Re-sends every rule to a worker whose rules drifted (after a rules.reset). */
  resyncRules: (workerId: number) => void;
  expectedRulesHash: () => string;
}

/** Restart delays: doubling from the first to the cap while a worker keeps failing. */
const RESTART_DELAY_FIRST_MS = 100;
const RESTART_DELAY_CAP_MS = 10_000;
/** A worker that stayed up this long has recovered: its next failure starts the backoff anew. */
const STABLE_AFTER_MS = 30_000;

/** One worker id: its current process, how often it was restarted or re-synced, its samples. */
export interface WorkerSlot {
  id: number;
  process: WorkerProcess;
  restarts: number;
  resyncs: number;
  /** Failures in a row (reset once a worker has stayed up STABLE_AFTER_MS). */
  failures: number;
  stats: StatsCollector;
}

/**
 * The worker processes. A worker that exits, or stops answering heartbeats, is started again
 * with exponential backoff and given the full state anew; one whose rules drifted is re-synced.
 */
export class WorkerPool {
  readonly slots: WorkerSlot[] = [];
  private readonly options: WorkerPoolOptions;
  private stopping = false;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
    for (let id = 0; id < options.count; id++) {
      const slot: WorkerSlot = {
        id,
        process: this.spawn(id),
        restarts: 0,
        resyncs: 0,
        failures: 0,
        stats: new StatsCollector(),
      };
      this.slots.push(slot);
    }
  }

  /** Resolves when every worker has said it is ready. */
  ready(timeoutMs: number): Promise<void> {
    const waits = this.slots.map(
      (slot) =>
        new Promise<void>((resolve, reject) => {
          if (slot.process.state === 'running') return resolve();
          const timer = setTimeout(
            () => reject(startError(`worker ${slot.id} did not say it was ready within ${timeoutMs} ms`)),
            timeoutMs,
          );
          slot.process.once('ready', () => {
            clearTimeout(timer);
            resolve();
          });
          slot.process.once('exit', (code, signal) => {
            clearTimeout(timer);
            const reason = slot.process.startFailure;
            reject(
              startError(
                reason !== undefined
                  ? `worker ${slot.id} could not start: ${reason}`
                  : `worker ${slot.id} ${signal ? `was killed by ${signal}` : `exited with status ${code}`} during start-up without saying why; see its log lines above`,
              ),
            );
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
    const { entry, logLevel, log, settings, cpus, account } = this.options;
    const cpu = cpus[id % cpus.length]!;
    const worker = new WorkerProcess({
      id,
      entry,
      logLevel,
      log,
      cpu,
      account,
      expectedRulesHash: this.options.expectedRulesHash,
    });
    worker.once('ready', () => {
      worker.send({ type: 'configure', workerId: id, settings });
      this.options.sync(id);
    });
    worker.on('stats', (report) => this.slots[id]?.stats.record(report));
    worker.on('drift', (held, expected) => this.onDrift(id, held, expected));
    worker.once('exit', (code, signal) => this.onExit(id, worker, code, signal));
    return worker;
  }

  private onDrift(id: number, held: string, expected: string): void {
    const slot = this.slots[id]!;
    slot.resyncs++;
    this.options.log.warn(
      { worker: id, held, expected, resyncs: slot.resyncs },
      "worker rules drifted from the supervisor's; re-syncing",
    );
    this.send(id, { type: 'rules.reset' });
    this.options.resyncRules(id);
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
    const upFor = worker.startedAt ? Date.now() - worker.startedAt.getTime() : 0;
    slot.failures = upFor >= STABLE_AFTER_MS ? 1 : slot.failures + 1;
    const delay = Math.min(RESTART_DELAY_CAP_MS, RESTART_DELAY_FIRST_MS * 2 ** (slot.failures - 1));
    this.options.log.error(
      {
        worker: id,
        code,
        signal,
        reason: worker.startFailure,
        restartInMs: delay,
        failuresInARow: slot.failures,
      },
      'worker exited unexpectedly; restarting',
    );
    setTimeout(() => {
      if (this.stopping) return;
      slot.restarts++;
      slot.stats.reset();
      slot.process = this.spawn(id);
    }, delay);
  }
}

/** A worker that did not start: a foreseen failure with a stable code (mcrd prints no stack). */
function startError(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'E_WORKER_START' });
}
