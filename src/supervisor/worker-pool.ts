import type { Logger } from 'pino';
import type { WorkerProcessHealth } from '../protocol/control-api.js';
import type { DataPlaneSettings, SupervisorMessage } from '../protocol/worker-messages.js';
import type { Account } from '../sys/privileges.js';
import { restartDelay, type RestartHistory } from './restart-policy.js';
import type { WorkerLifeEvents } from './worker-events.js';
import { WorkerProcess, type WorkerLauncher } from './worker-process.js';

export interface WorkerPoolOptions {
  count: number;
  /** CPUs to pin workers to, worker i on cpus[i % length]. */
  cpus: number[];
  account: Account;
  entry: string;
  /** The nice value each worker gives its packet thread. */
  nice: number;
  /** The workers' log level; setLogLevel changes it for running and future workers. */
  logLevel: string;
  logFormat: 'json' | 'text';
  settings: DataPlaneSettings;
  /** The descriptor of worker `id`'s counter region (CounterStore), given to each of its processes. */
  counterRegion: (id: number) => number;
  log: Logger;
  /** Replays the current state (inputs, rules, descriptors) into a worker that just started. */
  sync: (workerId: number) => void;
  /** A worker finished handing input `name` over to a new socket. */
  inputHandedOver: (workerId: number, name: string) => void;
  /** Re-sends every rule to a worker whose rules drifted (after a rules.reset). */
  resyncRules: (workerId: number) => void;
  expectedRulesHash: () => string;
  /** Starts, exits, restarts and re-syncs are events (and so log lines). */
  events: WorkerLifeEvents;
  /** How worker processes are started (by default: this Node binary runs `entry`). */
  launch?: WorkerLauncher;
  /** A monotonic clock in ms; performance.now by default. */
  now?: () => number;
}

/** One worker id: its current process, how often it was restarted or re-synced, its health. */
export interface WorkerSlot {
  id: number;
  process: WorkerProcess;
  restarts: number;
  resyncs: number;
  /** Failures in a row, for the restart delay (restart-policy.ts). */
  history: RestartHistory;
  /** When its last process exit was seen (monotonic ms), until a new one answers a heartbeat. */
  downSince: number | undefined;
  /** What its current process last said of its memory and CPU (null until it has). */
  health: WorkerProcessHealth | null;
}

/**
 * The worker processes. A worker that exits, or stops answering heartbeats, is started again
 * (at once or after a delay, see restart-policy.ts) and given the full state anew; one whose
 * rules drifted, or that caught up after its rule updates were coalesced, is re-synced.
 */
export class WorkerPool {
  /** In force for every worker, and given to new ones at start. */
  logLevel: string;
  readonly slots: WorkerSlot[] = [];
  private readonly options: WorkerPoolOptions;
  private readonly now: () => number;
  private stopping = false;

  constructor(options: WorkerPoolOptions) {
    this.options = options;
    this.logLevel = options.logLevel;
    this.now = options.now ?? (() => performance.now());
    for (let id = 0; id < options.count; id++) {
      const slot: WorkerSlot = {
        id,
        process: this.spawn(id),
        restarts: 0,
        resyncs: 0,
        history: { startFailures: 0, laterFailures: 0 },
        downSince: undefined,
        health: null,
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

  /** Changes the workers' log level at once, and for the workers started later. */
  setLogLevel(level: string): void {
    this.logLevel = level;
    for (const slot of this.slots) this.send(slot.id, { type: 'log.level', level });
  }

  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => slot.process.stop(graceMs)));
    for (const slot of this.slots) slot.process.closeChannel();
  }

  private spawn(id: number): WorkerProcess {
    const { entry, log, settings, cpus, account } = this.options;
    const logLevel = this.logLevel;
    const cpu = cpus[id % cpus.length]!;
    const worker = new WorkerProcess({
      id,
      entry,
      nice: this.options.nice,
      logLevel,
      logFormat: this.options.logFormat,
      log,
      cpu,
      account,
      expectedRulesHash: this.options.expectedRulesHash,
      launch: this.options.launch,
      now: this.now,
    });
    worker.once('ready', () => {
      worker.send({ type: 'configure', workerId: id, settings }, [this.options.counterRegion(id)]);
      this.options.sync(id);
    });
    worker.once('alive', () => this.onAlive(id, worker));
    worker.on('health', (health) => {
      const slot = this.slots[id];
      if (slot?.process === worker) slot.health = health;
    });
    worker.on('drift', (held, expected) => this.onDrift(id, held, expected));
    worker.on('resync', () => this.onCaughtUp(id));
    worker.on('inputHandedOver', (name) => {
      if (this.slots[id]?.process === worker) this.options.inputHandedOver(id, name);
    });
    worker.once('exit', (code, signal) => this.onExit(id, worker, code, signal));
    return worker;
  }

  /** A worker's first heartbeat answer: it runs; if it replaced one that died, the slot has recovered. */
  private onAlive(id: number, worker: WorkerProcess): void {
    const slot = this.slots[id];
    if (slot?.process !== worker) return;
    const downMs = slot.downSince === undefined ? null : Math.round(this.now() - slot.downSince);
    slot.downSince = undefined;
    this.options.events.workerUp(id, worker.pid, slot.restarts, downMs);
  }

  /** Rule updates were coalesced while the worker was behind; it has caught up: send them whole. */
  private onCaughtUp(id: number): void {
    const slot = this.slots[id]!;
    this.options.events.workerResynced(id, slot.process.pid, slot.restarts, 'caught-up');
    this.send(id, { type: 'rules.reset' });
    this.options.resyncRules(id);
  }

  private onDrift(id: number, held: string, expected: string): void {
    const slot = this.slots[id]!;
    slot.resyncs++;
    this.options.log.debug({ worker: id, held, expected, resyncs: slot.resyncs }, 'worker rules hashes');
    this.options.events.workerResynced(id, slot.process.pid, slot.restarts, 'drift');
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
    const exitedAt = worker.exitedAt ?? this.now();
    slot.downSince ??= exitedAt;
    const { kind, delayMs, history } = restartDelay(slot.history, {
      ranFine: worker.ranFine,
      upMs: exitedAt - worker.spawnedAt,
      code,
      signal,
      replaced: worker.replacedFor !== undefined,
    });
    slot.history = history;
    this.options.log.debug(
      { worker: id, startFailuresInARow: history.startFailures, failuresInARow: history.laterFailures },
      'worker restart backoff',
    );
    this.options.events.workerExited(id, slot.restarts, {
      pid: worker.pid,
      code,
      signal,
      reason: worker.replacedFor ?? worker.startFailure ?? null,
      death: kind,
      restartInMs: delayMs,
    });
    setTimeout(() => {
      if (this.stopping) return;
      slot.restarts++;
      slot.health = null;
      slot.process = this.spawn(id);
    }, delayMs);
  }
}

/** A worker that did not start: a foreseen failure with a stable code (mcrd prints no stack). */
function startError(message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code: 'E_WORKER_START' });
}
