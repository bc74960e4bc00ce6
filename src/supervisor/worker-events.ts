import type { EventWorker } from '../protocol/control-api.js';
import type { EventBus } from './event-bus.js';
import type { DeathKind } from './restart-policy.js';

/** A worker's exit, as the pool saw it. */
export interface WorkerExit {
  pid: number | null;
  code: number | null;
  signal: string | null;
  /** Why mcrd killed it, or what it said when it could not start. */
  reason: string | null;
  death: DeathKind;
  restartInMs: number;
}

/** What the worker pool tells of its workers (WorkerPool calls these; tests may pass none). */
export interface WorkerLifeEvents {
  /** A worker answered its first heartbeat: `downMs` null for a first start, else since the exit it replaces. */
  workerUp(id: number, pid: number | null, restarts: number, downMs: number | null): void;
  workerExited(id: number, restarts: number, exit: WorkerExit): void;
  workerResynced(id: number, pid: number | null, restarts: number, why: 'drift' | 'caught-up'): void;
}

/** Worker starts, exits, restarts and re-syncs as events. */
export class WorkerEvents implements WorkerLifeEvents {
  private readonly bus: EventBus;

  constructor(bus: EventBus) {
    this.bus = bus;
  }

  workerUp(id: number, pid: number | null, restarts: number, downMs: number | null): void {
    const worker = section(id, pid, restarts, { downMs });
    if (downMs === null) {
      this.bus.publish({ type: 'worker.started', worker, message: `worker ${id} pid ${pid} running` });
      return;
    }
    this.bus.publish({
      type: 'worker.restarted',
      worker,
      message: `worker ${id} pid ${pid} running again ${downMs} ms after the exit (restart ${restarts})`,
    });
  }

  workerExited(id: number, restarts: number, exit: WorkerExit): void {
    const { pid, code, signal, reason, death, restartInMs } = exit;
    const how = signal ? `killed by ${signal}` : `exited with status ${code}`;
    this.bus.publish({
      type: 'worker.exited',
      worker: section(id, pid, restarts, { code, signal, reason, death, restartInMs }),
      message: `worker ${id} pid ${pid} ${how}${reason ? ` (${reason})` : ''}; restarting ${restartInMs === 0 ? 'now' : `in ${restartInMs} ms`}${death === 'start-up' ? ' (it died while starting: backing off)' : ''}`,
    });
  }

  workerResynced(id: number, pid: number | null, restarts: number, why: 'drift' | 'caught-up'): void {
    this.bus.publish({
      type: 'worker.resynced',
      worker: section(id, pid, restarts, { resync: why }),
      message:
        why === 'drift'
          ? `worker ${id} pid ${pid}: its rules differed from mcrd's; every rule sent again`
          : `worker ${id} pid ${pid} caught up on its channel; its coalesced rule updates sent again as every rule`,
    });
  }
}

function section(id: number, pid: number | null, restarts: number, more: Partial<EventWorker>): EventWorker {
  return {
    id,
    pid,
    code: null,
    signal: null,
    reason: null,
    death: null,
    restartInMs: null,
    downMs: null,
    restarts,
    resync: null,
    ...more,
  };
}
