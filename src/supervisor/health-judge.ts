/**
 * Judges whether a worker is alive by what it did, not by the supervisor's own delays.
 *
 * The supervisor asks every `intervalMs` (a heartbeat) and reads the answers before it judges. A
 * worker is alive while it answers, or, when messages wait for it in the supervisor's queue, while
 * it reads them (the queue shrinks: it is slow, not stopped). Its silence is counted in heartbeat
 * intervals of the supervisor's own running time: a timer that fires late says how long the
 * supervisor itself was stalled (a blocking call, a stopped process, an overloaded host), and
 * that part is not the worker's. So each tick adds at most one interval of silence, and a worker
 * is given up once its silence exceeds `timeoutMs`: with 250 ms and 1.5 s, six heartbeats in a row
 * went unanswered while nothing it was sent got read.
 */
export interface JudgeSettings {
  intervalMs: number;
  timeoutMs: number;
}

export interface Judgement {
  alive: boolean;
  /** Silence counted against the worker so far. */
  silentMs: number;
  /** How late this tick came beyond its interval: the supervisor's own stall, not counted. */
  lateMs: number;
}

export class HealthJudge {
  private readonly settings: JudgeSettings;
  private lastTick: number;
  private silentMs = 0;

  constructor(settings: JudgeSettings, now: number) {
    this.settings = settings;
    this.lastTick = now;
  }

  /** The worker said something (a valid message): it is alive now. */
  heard(): void {
    this.silentMs = 0;
  }

  /**
   * One heartbeat tick, after the answers waiting on the channel were read. `progressed`: the
   * worker read messages that were waiting in the queue since the last tick.
   */
  tick(now: number, progressed: boolean): Judgement {
    const elapsed = Math.max(0, now - this.lastTick);
    this.lastTick = now;
    const lateMs = Math.max(0, elapsed - this.settings.intervalMs);
    if (progressed) this.silentMs = 0;
    else this.silentMs += Math.min(elapsed, this.settings.intervalMs);
    return { alive: this.silentMs <= this.settings.timeoutMs, silentMs: this.silentMs, lateMs };
  }
}
