import type { TraceCopy, TraceRecord } from '../protocol/trace.js';
import { MAX_OUTPUTS_PER_RULE } from '../rules/rule.js';
import { errnoName } from '../sys/errors.js';
import { OUTCOMES } from '../packet/frame-outcomes.js';

/** A copy's status, as stored (TraceCopy's status and path in one byte). */
export const COPY_DETACHED = 0;
export const COPY_TTL_EXPIRED = 1;
export const COPY_RAW = 2;
export const COPY_SOCKET = 3;
/** Added to COPY_RAW or COPY_SOCKET: the kernel refused it (errno kept beside it). */
export const COPY_REFUSED = 4;

/** A record that was written but then withdrawn (see TraceBuffer.withdraw); skipped when taken. */
const WITHDRAWN = -1;

/**
 * The records of one trace in one worker: a bounded ring of preallocated typed arrays, written by
 * the data path (no allocation per record) and taken by the worker's timer, which turns them into
 * messages. When it is full a record is not written (and counted as missed): tracing never holds
 * forwarding back. Null fields are stored as -1.
 */
export class TraceBuffer {
  readonly capacity: number;
  private readonly timeUs: Float64Array;
  private readonly outcome: Int16Array;
  private readonly vlan: Int16Array;
  private readonly ttl: Int16Array;
  private readonly source: Float64Array;
  private readonly group: Float64Array;
  private readonly sourcePort: Int32Array;
  private readonly port: Int32Array;
  private readonly frameLength: Int32Array;
  private readonly payloadLength: Int32Array;
  private readonly rule: (string | null)[];
  private readonly copyCount: Uint8Array;
  /** Per record, MAX_OUTPUTS_PER_RULE entries: COPY_* codes and errnos. */
  private readonly copyStatus: Uint8Array;
  private readonly copyErrno: Int16Array;
  /** Index of the oldest record, and how many are held. */
  private head = 0;
  private held = 0;
  /** Records not written because the buffer was full, since the last take. */
  missed = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.timeUs = new Float64Array(capacity);
    this.outcome = new Int16Array(capacity);
    this.vlan = new Int16Array(capacity);
    this.ttl = new Int16Array(capacity);
    this.source = new Float64Array(capacity);
    this.group = new Float64Array(capacity);
    this.sourcePort = new Int32Array(capacity);
    this.port = new Int32Array(capacity);
    this.frameLength = new Int32Array(capacity);
    this.payloadLength = new Int32Array(capacity);
    this.rule = new Array<string | null>(capacity).fill(null);
    this.copyCount = new Uint8Array(capacity);
    this.copyStatus = new Uint8Array(capacity * MAX_OUTPUTS_PER_RULE);
    this.copyErrno = new Int16Array(capacity * MAX_OUTPUTS_PER_RULE);
  }

  get size(): number {
    return this.held;
  }

  /**
   * Starts a record and returns its index, or -1 when the buffer is full (the caller counts it
   * as missed).
   * Fields are then set with the setters below; an address or port not read is -1.
   */
  begin(
    timeUs: number,
    outcome: number,
    frameLength: number,
    vlan: number,
    source: number,
    group: number,
    sourcePort: number,
    port: number,
    ttl: number,
    payloadLength: number,
  ): number {
    if (this.held === this.capacity) return -1;
    const at = this.slotOf(this.held);
    this.held++;
    this.timeUs[at] = timeUs;
    this.outcome[at] = outcome;
    this.frameLength[at] = frameLength;
    this.vlan[at] = vlan;
    this.source[at] = source;
    this.group[at] = group;
    this.sourcePort[at] = sourcePort;
    this.port[at] = port;
    this.ttl[at] = ttl;
    this.payloadLength[at] = payloadLength;
    this.rule[at] = null;
    this.copyCount[at] = 0;
    return at;
  }

  setRule(at: number, id: string): void {
    this.rule[at] = id;
  }

  setOutcome(at: number, outcome: number): void {
    this.outcome[at] = outcome;
  }

  getOutcome(at: number): number {
    return this.outcome[at]!;
  }

  /** Adds the next output's copy (rule order). */
  addCopy(at: number, status: number): void {
    const n = this.copyCount[at]!;
    if (n >= MAX_OUTPUTS_PER_RULE) return;
    this.copyStatus[at * MAX_OUTPUTS_PER_RULE + n] = status;
    this.copyErrno[at * MAX_OUTPUTS_PER_RULE + n] = 0;
    this.copyCount[at] = n + 1;
  }

  copyCountOf(at: number): number {
    return this.copyCount[at]!;
  }

  copyStatusOf(at: number, output: number): number {
    return this.copyStatus[at * MAX_OUTPUTS_PER_RULE + output]!;
  }

  /** The kernel refused output `output`'s copy with `errno`. */
  refuse(at: number, output: number, errno: number): void {
    const i = at * MAX_OUTPUTS_PER_RULE + output;
    if ((this.copyStatus[i]! & COPY_REFUSED) !== 0) return;
    this.copyStatus[i] = this.copyStatus[i]! | COPY_REFUSED;
    this.copyErrno[i] = errno;
  }

  /** Withdraws a record written in this batch (a drops-only trace's frame that was forwarded after all). */
  withdraw(at: number): void {
    this.outcome[at] = WITHDRAWN;
  }

  /**
   * Frees the room of the records withdrawn among the last `recent` (the current batch's), keeping
   * the others in order: a drops-only trace of a busy flow does not fill up with forwarded frames.
   */
  compact(recent: number): void {
    const first = this.held - Math.min(recent, this.held);
    let kept = first;
    for (let i = first; i < this.held; i++) {
      const from = this.slotOf(i);
      if (this.outcome[from] === WITHDRAWN) continue;
      if (kept !== i) this.move(from, this.slotOf(kept));
      kept++;
    }
    for (let i = kept; i < this.held; i++) this.rule[this.slotOf(i)] = null;
    this.held = kept;
  }

  private slotOf(i: number): number {
    const at = this.head + i;
    return at >= this.capacity ? at - this.capacity : at;
  }

  private move(from: number, to: number): void {
    this.timeUs[to] = this.timeUs[from]!;
    this.outcome[to] = this.outcome[from]!;
    this.frameLength[to] = this.frameLength[from]!;
    this.vlan[to] = this.vlan[from]!;
    this.source[to] = this.source[from]!;
    this.group[to] = this.group[from]!;
    this.sourcePort[to] = this.sourcePort[from]!;
    this.port[to] = this.port[from]!;
    this.ttl[to] = this.ttl[from]!;
    this.payloadLength[to] = this.payloadLength[from]!;
    this.rule[to] = this.rule[from]!;
    const n = this.copyCount[from]!;
    this.copyCount[to] = n;
    const f = from * MAX_OUTPUTS_PER_RULE;
    this.copyStatus.copyWithin(to * MAX_OUTPUTS_PER_RULE, f, f + n);
    this.copyErrno.copyWithin(to * MAX_OUTPUTS_PER_RULE, f, f + n);
  }

  /** Takes up to `max` records, oldest first, as messages carry them (allocates: off the data path). */
  take(max: number): TraceRecord[] {
    const records: TraceRecord[] = [];
    while (this.held > 0 && records.length < max) {
      const at = this.head;
      this.head = at + 1 === this.capacity ? 0 : at + 1;
      this.held--;
      if (this.outcome[at] === WITHDRAWN) continue;
      records.push(this.record(at));
      this.rule[at] = null;
    }
    return records;
  }

  private record(at: number): TraceRecord {
    const copies: TraceCopy[] = [];
    for (let o = 0; o < this.copyCount[at]!; o++) {
      const status = this.copyStatus[at * MAX_OUTPUTS_PER_RULE + o]!;
      copies.push(copyOf(o, status, this.copyErrno[at * MAX_OUTPUTS_PER_RULE + o]!));
    }
    return {
      timeUs: this.timeUs[at]!,
      vlan: orNull(this.vlan[at]!),
      source: orNull(this.source[at]!),
      sourcePort: orNull(this.sourcePort[at]!),
      group: orNull(this.group[at]!),
      port: orNull(this.port[at]!),
      ttl: orNull(this.ttl[at]!),
      frameLength: this.frameLength[at]!,
      payloadLength: orNull(this.payloadLength[at]!),
      outcome: OUTCOMES[this.outcome[at]!]!.name,
      rule: this.rule[at]!,
      copies,
    };
  }
}

function orNull(value: number): number | null {
  return value < 0 ? null : value;
}

function copyOf(output: number, status: number, errno: number): TraceCopy {
  if (status === COPY_DETACHED) return { output, status: 'detached', path: null, errno: null };
  if (status === COPY_TTL_EXPIRED) return { output, status: 'ttl_expired', path: null, errno: null };
  const path = (status & ~COPY_REFUSED) === COPY_RAW ? 'raw' : 'socket';
  if ((status & COPY_REFUSED) === 0) return { output, status: 'sent', path, errno: null };
  return { output, status: 'refused', path, errno: errnoName(errno) };
}
