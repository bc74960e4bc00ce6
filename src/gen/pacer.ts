// Send pacing as pure arithmetic on elapsed time. Packet i is scheduled at i / rate seconds
// after the start, and the sender asks how many are due from the elapsed time, never from the
// previous wake-up: late timers or slow batches therefore never make the rate drift, they only
// make the next batch larger.

/** Packets a duration-limited paced run sends: those scheduled strictly before the end. */
export function packetsInDuration(rate: number, seconds: number): number {
  return Math.ceil(rate * seconds - 1e-9);
}

export class Pacer {
  /** Packets per second; 0 means unpaced (everything up to the limit is always due). */
  readonly rate: number;
  /** Total packets to send; Infinity when only a duration bounds the run. */
  readonly limit: number;

  constructor(rate: number, limit: number) {
    if (!(rate >= 0) || !Number.isFinite(rate))
      throw new RangeError(`rate must be a finite number ≥ 0, got ${rate}`);
    if (!(limit >= 0)) throw new RangeError(`limit must be ≥ 0, got ${limit}`);
    this.rate = rate;
    this.limit = limit;
  }

  get unpaced(): boolean {
    return this.rate === 0;
  }

  /** How many packets (counting from packet 0) are due once `elapsedMs` have passed. */
  dueBy(elapsedMs: number): number {
    if (this.rate === 0) return this.limit;
    if (elapsedMs < 0) return 0;
    // The epsilon absorbs float error so a packet whose slot is exactly now counts as due.
    const due = Math.floor((elapsedMs * this.rate) / 1000 + 1e-9) + 1;
    return due < this.limit ? due : this.limit;
  }

  /** Milliseconds from `elapsedMs` until packet `index` is due (≤ 0: due already). */
  msUntil(index: number, elapsedMs: number): number {
    if (this.rate === 0) return 0;
    return (index * 1000) / this.rate - elapsedMs;
  }
}
