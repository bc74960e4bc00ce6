import type { ParamsOf, ResultOf } from '../protocol/control-api.js';
import { ControlError, RPC_INVALID_PARAMS } from '../protocol/json-rpc.js';
import type { RuleTable } from './rule-table.js';
import type { WorkerPool } from './worker-pool.js';

// Fault injection for tests (mcrd --debug-methods): control methods that make a worker misbehave
// on purpose, so the supervisor's reactions can be proved against the real processes.

const TRY_DENIED_TIMEOUT_MS = 5000;

/** Fault injection (--debug-methods): makes one worker drop a rule behind the supervisor's back. */
export function forgetRule(
  pool: WorkerPool,
  table: RuleTable,
  params: { worker: number; id: string },
): { sent: boolean } {
  table.find({ id: params.id });
  if (!pool.slots[params.worker]) {
    throw new ControlError('E_WORKER_NOT_FOUND', `no worker ${params.worker}`, {
      field: 'worker',
      value: params.worker,
    });
  }
  pool.send(params.worker, { type: 'debug.forget', id: params.id });
  return { sent: true };
}

/**
 * Fault injection (--debug-methods): one worker attempts an operation its system-call filter
 * denies and reports the outcome as the command's error (the errno name, or E_NOT_CONFINED).
 */
export function tryDenied(
  pool: WorkerPool,
  params: ParamsOf<'debug.tryDenied'>,
): Promise<ResultOf<'debug.tryDenied'>> {
  const { worker: id, operation } = params;
  const worker = pool.slots[id]?.process;
  if (!worker)
    throw new ControlError('E_WORKER_NOT_FOUND', `no worker ${id}`, { field: 'worker', value: id });
  if (operation === 'kill' && params.pid === undefined) {
    throw new ControlError(
      'E_INVALID_PARAMS',
      'debug.tryDenied: kill needs pid, the process to send signal 0 to',
      { field: 'pid' },
      RPC_INVALID_PARAMS,
    );
  }
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      worker.off('failure', onOutcome);
      worker.off('exit', onExit);
    };
    const onOutcome = (message: { code: string; message: string; subject: string }): void => {
      if (message.subject !== 'debug.tryDenied') return;
      done();
      // From the worker: untrusted, kept short.
      resolve({
        worker: id,
        operation,
        outcome: String(message.code).slice(0, 64),
        message: String(message.message).slice(0, 500),
      });
    };
    const onExit = (): void => {
      done();
      reject(new ControlError('E_WORKER_EXITED', `worker ${id} exited during the attempt (${operation})`));
    };
    const timer = setTimeout(() => {
      done();
      reject(
        new ControlError('E_TIMEOUT', `worker ${id} did not report its attempt (${operation}) within 5 s`),
      );
    }, TRY_DENIED_TIMEOUT_MS);
    worker.on('failure', onOutcome);
    worker.once('exit', onExit);
    if (!worker.send({ type: 'debug.tryDenied', operation, pid: params.pid ?? null })) {
      done();
      reject(new ControlError('E_WORKER_EXITED', `worker ${id} is not running`));
    }
  });
}
