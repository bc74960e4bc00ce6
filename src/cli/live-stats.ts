import { performance } from 'node:perf_hooks';
import { ControlClient } from '../protocol/control-client.js';
import { PROTOCOL_VERSION } from '../protocol/json-rpc.js';
import { packageVersion } from './package-info.js';
import type { Snapshot } from './top-model.js';

// Where the live views get their numbers: stats.get on one connection, asked once per refresh.
// When mcrd goes away (restart, upgrade, crash) a poll reports why and the next one connects
// again, so a view left open on a wall screen comes back by itself.

/** The daemon a poll reached. */
export interface DaemonInfo {
  version: string;
  pid: number;
  /** When it started, on this process's monotonic clock (ms), from the uptime it reported. */
  startedAt: number;
}

export type Poll =
  | { ok: true; snapshot: Snapshot; daemon: DaemonInfo }
  | { ok: false; error: { code: string; message: string } };

export class StatsPoller {
  private readonly socketPath: string;
  private readonly timeoutMs: number;
  private client: ControlClient | undefined;
  private daemon: DaemonInfo | undefined;

  constructor(socketPath: string, timeoutMs = 5000) {
    this.socketPath = socketPath;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Connects (when not connected), says which protocol this mcrctl speaks, and asks for one
   * snapshot. Never throws: a failure is the poll's answer, and the connection is dropped so
   * the next poll starts afresh.
   */
  async poll(): Promise<Poll> {
    try {
      const daemon = await this.connected();
      const stats = await this.client!.call('stats.get', {}, this.timeoutMs);
      return { ok: true, snapshot: { stats, at: performance.now() }, daemon };
    } catch (err) {
      this.close();
      const e = err as Error & { code?: string };
      return { ok: false, error: { code: e.code ?? 'E_INTERNAL', message: e.message } };
    }
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
    this.daemon = undefined;
  }

  private async connected(): Promise<DaemonInfo> {
    if (this.client && this.daemon) return this.daemon;
    const client = await ControlClient.open(this.socketPath, this.timeoutMs);
    this.client = client;
    // mcrd closing the connection (it stopped) is noticed before the next request is written
    // into a dead socket, where it would wait for its timeout.
    void client.closed().then(() => {
      if (this.client === client) this.close();
    });
    const version = await client.call(
      'version',
      { protocol: PROTOCOL_VERSION, client: `mcrctl ${packageVersion()}` },
      this.timeoutMs,
    );
    const ping = await client.call('ping', {}, this.timeoutMs);
    this.daemon = {
      version: version.version,
      pid: ping.pid,
      startedAt: performance.now() - ping.uptimeSeconds * 1000,
    };
    return this.daemon;
  }
}

/**
 * Calls `tick` now (or after one interval) and then every `intervalMs`, on a schedule that does
 * not drift by the time each tick takes (a tick that runs late is not made up for). Returns the
 * function that stops it.
 */
export function every(
  intervalMs: number,
  tick: () => Promise<void>,
  options: { first: 'now' | 'after an interval' } = { first: 'now' },
): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const start = performance.now();
  /** Ticks are due at start + slot × intervalMs. */
  let slot = options.first === 'now' ? 0 : 1;
  const schedule = (): void => {
    timer = setTimeout(() => void run(), Math.max(0, start + slot * intervalMs - performance.now()));
  };
  const run = async (): Promise<void> => {
    await tick();
    if (stopped) return;
    // A tick that took longer than an interval skips the slots it missed.
    slot = Math.max(slot + 1, Math.ceil((performance.now() - start) / intervalMs));
    schedule();
  };
  schedule();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
  };
}
