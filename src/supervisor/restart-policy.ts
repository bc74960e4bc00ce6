/**
 * When to start a worker again after it died. Recovery must not slow down because something keeps
 * killing workers: a storm of 15 kills in 20 s once kept the relay down for 17 s, because every
 * death counted as a failure to start and the delay doubled to 10 s. Three kinds of death:
 *
 * - start-up: it died before it ever answered a heartbeat (it could not start, or crashed while
 *   being given its rules). Restarting at once would spin: back off 100 ms, doubling to 10 s.
 * - killed: it had run fine (answered heartbeats) and a signal from outside ended it (SIGKILL or
 *   SIGTERM by an operator, the OOM killer, any process of the workers' account). Not its fault
 *   and nothing to wait for: restart at once, however often it happens.
 * - failed: it had run fine, then ended by itself (an exit status, or a fault signal such as
 *   SIGSEGV, SIGABRT or SIGSYS), or the supervisor replaced it (silent, misbehaving, too far
 *   behind). It may fail again the same way (a packet or a rule that crashes it): at once the first
 *   time, then 100 ms doubling to a short cap of 1 s, so the relay is never down long.
 *
 * A worker that stays up 30 s clears the count of failures after start-up; one that answers a
 * heartbeat clears the count of start-up failures.
 */
export type DeathKind = 'start-up' | 'killed' | 'failed';

export interface Death {
  /** It answered at least one heartbeat. */
  ranFine: boolean;
  /** How long it was up (from spawn to exit). */
  upMs: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The supervisor killed it (silent, misbehaving, its queue overflowed). */
  replaced: boolean;
}

/** Failures in a row, per worker slot. */
export interface RestartHistory {
  startFailures: number;
  laterFailures: number;
}

export const START_DELAY_FIRST_MS = 100;
export const START_DELAY_CAP_MS = 10_000;
export const FAILED_DELAY_CAP_MS = 1000;
export const STABLE_AFTER_MS = 30_000;

/** Signals a process gets from its own fault, not from someone else's kill. */
const FAULT_SIGNALS = new Set<string>([
  'SIGSEGV',
  'SIGBUS',
  'SIGILL',
  'SIGFPE',
  'SIGABRT',
  'SIGTRAP',
  'SIGSYS',
]);

export function classifyDeath(death: Death): DeathKind {
  if (!death.ranFine) return 'start-up';
  if (death.signal !== null && !death.replaced && !FAULT_SIGNALS.has(death.signal)) return 'killed';
  return 'failed';
}

/** The delay before the next start, and the history after this death. */
export function restartDelay(
  history: RestartHistory,
  death: Death,
): { kind: DeathKind; delayMs: number; history: RestartHistory } {
  const kind = classifyDeath(death);
  const laterFailures = death.upMs >= STABLE_AFTER_MS ? 0 : history.laterFailures;
  switch (kind) {
    case 'start-up': {
      const startFailures = history.startFailures + 1;
      const delayMs = Math.min(START_DELAY_CAP_MS, START_DELAY_FIRST_MS * 2 ** (startFailures - 1));
      return { kind, delayMs, history: { startFailures, laterFailures } };
    }
    case 'killed':
      return { kind, delayMs: 0, history: { startFailures: 0, laterFailures } };
    case 'failed': {
      const n = laterFailures + 1;
      const delayMs = n === 1 ? 0 : Math.min(FAILED_DELAY_CAP_MS, START_DELAY_FIRST_MS * 2 ** (n - 2));
      return { kind, delayMs, history: { startFailures: 0, laterFailures: n } };
    }
  }
}
