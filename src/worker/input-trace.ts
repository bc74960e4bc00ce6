import { DropReason, ParsedFrame, parseFrame } from '../packet/frame.js';
import type { TraceSelection } from '../protocol/trace.js';
import {
  TP2_LEN,
  TP2_MAC,
  TP2_NSEC,
  TP2_SEC,
  TP2_SNAPLEN,
  TP2_VLAN_TCI,
  TP_STATUS_VLAN_VALID,
  type RxRing,
} from '../sys/rx-ring.js';
import type { ForwardingRule } from './forwarding-rule.js';
import type { InputRules } from './input-rules.js';
import { COPY_DETACHED, COPY_RAW, COPY_SOCKET, COPY_TTL_EXPIRED, TraceBuffer } from './trace-buffer.js';
import { EGRESS_FAILED, FORWARDED, NO_OUTPUT, OWN_SOURCE, TTL_EXPIRED } from '../packet/frame-outcomes.js';

/** Records a worker holds per trace before its timer sends them (the rest are counted missed). */
export const TRACE_BUFFER_RECORDS = 1024;
/** Traces one worker runs at once (the supervisor allows no more: MAX_CONCURRENT_TRACES). */
export const MAX_WORKER_TRACES = 4;

/** One trace in one worker: what it takes, how many it may record, and its records. */
export class TraceSession {
  readonly id: number;
  readonly selection: TraceSelection;
  readonly dropsOnly: boolean;
  readonly count: number;
  readonly buffer: TraceBuffer;
  /** Records written and settled (they count towards `count`). */
  recorded = 0;
  /** Records of the current batch waiting for their copies' outcome (forwarded frames). */
  pending = 0;
  /** Records written in the current batch (a drops-only trace withdraws some after the send). */
  written = 0;

  constructor(id: number, selection: TraceSelection, count: number, dropsOnly: boolean) {
    this.id = id;
    this.selection = selection;
    this.count = count;
    this.dropsOnly = dropsOnly;
    // A drops-only trace also holds a batch's forwarded frames until they are settled.
    this.buffer = new TraceBuffer(dropsOnly ? TRACE_BUFFER_RECORDS : Math.min(count, TRACE_BUFFER_RECORDS));
  }

  get done(): boolean {
    return this.recorded >= this.count;
  }

  /** Whether a frame with this rule, group and port (-1: not read) is one this trace takes. */
  takes(rule: ForwardingRule | undefined, group: number, port: number): boolean {
    const s = this.selection;
    if (s.rule !== null) return rule !== undefined && rule.id === s.rule;
    return (s.group === null || s.group === group) && (s.port === null || s.port === port);
  }
}

/**
 * Tracing of one input's frames, driven by InputPath.drain (three calls, each behind one test of
 * a local that is undefined while nothing traces this input: see drain's comment for the cost).
 *
 * A frame's outcome is not decided twice: it is read from the worker's outcome counters, as the
 * one that went up while the data path handled the frame (every frame lands in exactly one; see
 * worker-counters.ts). So a trace shows what the counters counted, by construction. What the
 * record shows besides (addresses, ports, VLAN, TTL, lengths, the rule) is read again from the
 * slot, which stays the worker's until the batch is released; a copy's path and TTL verdict use
 * the same tests as the data path (OutputPath.pathFor, the TTL rule below), and a refused copy
 * its output's refusal log, by frame.
 */
export class InputTrace {
  sessions: TraceSession[] = [];
  private readonly parsed = new ParsedFrame();
  /** This batch's frames: their slot and outcome code (-1: not counted, e.g. skipped in a handover). */
  private readonly slots: Int32Array;
  private readonly outcomeOf: Int16Array;
  private count = 0;
  /** Whether the last frame's outcome is still to be read, and the counters before it. */
  private open = false;
  private seen: Float64Array | undefined;
  /** Forwarded frames' records waiting for the flush: session, record index, frame, rule. */
  private readonly pendingSession: (TraceSession | undefined)[];
  private readonly pendingAt: Int32Array;
  private readonly pendingFrame: Int32Array;
  private readonly pendingRule: (ForwardingRule | undefined)[];
  private pendingCount = 0;

  constructor(batchSize: number) {
    this.slots = new Int32Array(batchSize);
    this.outcomeOf = new Int16Array(batchSize);
    const pending = batchSize * MAX_WORKER_TRACES;
    this.pendingSession = new Array<TraceSession | undefined>(pending).fill(undefined);
    this.pendingAt = new Int32Array(pending);
    this.pendingFrame = new Int32Array(pending);
    this.pendingRule = new Array<ForwardingRule | undefined>(pending).fill(undefined);
  }

  /** A frame is taken from `slot`: the previous one's outcome is settled in the counters. */
  frame(slot: number, outcomes: Float64Array): void {
    if (this.open) this.settle(outcomes);
    else {
      this.seen ??= new Float64Array(outcomes.length);
      this.seen.set(outcomes);
    }
    if (this.count === this.slots.length) return;
    this.slots[this.count] = slot;
    this.open = true;
  }

  /** The outcome code that went up since the last look (-1: none did). */
  private settle(outcomes: Float64Array): void {
    const seen = this.seen!;
    let code = -1;
    for (let i = 0; i < outcomes.length; i++) {
      if (outcomes[i]! > seen[i]!) code = i;
      seen[i] = outcomes[i]!;
    }
    this.outcomeOf[this.count++] = code;
    this.open = false;
  }

  /**
   * Every frame of the batch is decided (copies queued, not sent): record the ones traces take.
   * A frame with copies queued (`queued`, by index in the batch) is counted only after the send
   * (forwarded, or egress_failed): no counter went up for it yet, so it is taken as forwarded
   * here and settled by sent().
   */
  framesTaken(
    ring: RxRing,
    rules: InputRules,
    outcomes: Float64Array,
    queued: Int32Array,
    queuedCount: number,
  ): void {
    if (this.open) this.settle(outcomes);
    for (let i = 0; i < queuedCount; i++) {
      const frame = queued[i]!;
      if (frame < this.count) this.outcomeOf[frame] = FORWARDED;
    }
    const { words, halfWords, bytes, frameSize } = ring;
    const p = this.parsed;
    // Rule traces take only frames a rule matched: the others need no decoding.
    let rulesOnly = true;
    for (const session of this.sessions) if (session.selection.rule === null) rulesOnly = false;
    for (let frame = 0; frame < this.count; frame++) {
      const outcome = this.outcomeOf[frame]!;
      if (outcome < 0) continue;
      // Only these outcomes come after drain's lookup found a rule; the same lookup finds it.
      const matched =
        outcome === FORWARDED || outcome === OWN_SOURCE || outcome === NO_OUTPUT || outcome === TTL_EXPIRED;
      if (rulesOnly && !matched) continue;
      const slotStart = this.slots[frame]! * frameSize;
      const status = words[slotStart >>> 2]!;
      const length = words[(slotStart + TP2_LEN) >>> 2]!;
      const captured = words[(slotStart + TP2_SNAPLEN) >>> 2]!;
      const start = slotStart + halfWords[(slotStart + TP2_MAC) >>> 1]!;
      const timeUs =
        words[(slotStart + TP2_SEC) >>> 2]! * 1e6 + Math.floor(words[(slotStart + TP2_NSEC) >>> 2]! / 1000);
      const reason = parseFrame(bytes, start, captured, p);
      // What the parser read before it stopped (frame.ts: fields of the layers it validated).
      const l2 = reason !== DropReason.TRUNCATED_ETHERNET && reason !== DropReason.TOO_MANY_VLAN_TAGS;
      const l3 =
        reason === DropReason.OK ||
        reason === DropReason.NOT_UDP ||
        reason === DropReason.FRAGMENT ||
        reason === DropReason.TRUNCATED_UDP ||
        reason === DropReason.BAD_UDP_LENGTH;
      const l4 = reason === DropReason.OK || reason === DropReason.BAD_UDP_LENGTH;
      // As drain reads it: the tag the kernel stripped, else the frame's own; 0 is untagged.
      let vlan = 0;
      if ((status & TP_STATUS_VLAN_VALID) !== 0) vlan = halfWords[(slotStart + TP2_VLAN_TCI) >>> 1]! & 0xfff;
      else if (l2 && p.vlanCount > 0) vlan = p.vlanId;
      const group = l3 ? p.dstAddr : -1;
      const port = l4 ? p.dstPort : -1;
      const rule = matched ? rules.find(vlan, p.dstAddr | 0, p.dstPort, p.srcAddr | 0) : undefined;
      for (const session of this.sessions) {
        // A drops-only trace's forwarded frames are still to be settled (most stay forwarded and
        // are withdrawn): they do not hold its drops back.
        if (session.recorded + (session.dropsOnly ? 0 : session.pending) >= session.count) continue;
        if (!session.takes(rule, group, port)) continue;
        const buffer = session.buffer;
        const at = buffer.begin(
          timeUs,
          outcome,
          length,
          vlan === 0 ? -1 : vlan,
          l3 ? p.srcAddr : -1,
          group,
          l4 ? p.srcPort : -1,
          port,
          l3 ? p.ttl : -1,
          reason === DropReason.OK ? p.payloadLength : -1,
        );
        if (at < 0) {
          // Full: a frame lost to the trace (a forwarded one is no loss to a drops-only trace).
          if (!session.dropsOnly || outcome !== FORWARDED) buffer.missed++;
          continue;
        }
        session.written++;
        if (rule !== undefined) {
          buffer.setRule(at, rule.id);
          if (outcome !== OWN_SOURCE) this.addCopies(buffer, at, rule);
        }
        if (outcome === FORWARDED && this.pendingCount < this.pendingAt.length) {
          const k = this.pendingCount++;
          this.pendingSession[k] = session;
          this.pendingAt[k] = at;
          this.pendingFrame[k] = frame;
          this.pendingRule[k] = rule;
          session.pending++;
        } else if (outcome === FORWARDED) buffer.withdraw(at);
        else session.recorded++;
      }
    }
    this.count = 0;
  }

  /**
   * Per output in rule order, what drain did: no sockets, a TTL that would be 0 (the same rule as
   * drain's: the output's fixed TTL, or the lower of its cap and the input's TTL minus one), or
   * a copy on the path queue() chose.
   */
  private addCopies(buffer: TraceBuffer, at: number, rule: ForwardingRule): void {
    const ttlLeft = this.parsed.ttl - 1;
    for (const output of rule.outputs) {
      if (!output.attached) {
        buffer.addCopy(at, COPY_DETACHED);
        continue;
      }
      const ttl = output.ttlFixed || output.ttl < ttlLeft ? output.ttl : ttlLeft;
      if (ttl <= 0) buffer.addCopy(at, COPY_TTL_EXPIRED);
      else buffer.addCopy(at, output.pathFor(this.parsed.payloadLength) === 'raw' ? COPY_RAW : COPY_SOCKET);
    }
  }

  /**
   * After the flush: refused copies are marked with their errno, a frame none of whose copies
   * went out (copiesLeft 0, as countForwarded reads it) becomes egress_failed, and a drops-only
   * trace withdraws the frames that were forwarded.
   */
  sent(copiesLeft: Int32Array): void {
    for (let k = 0; k < this.pendingCount; k++) {
      const session = this.pendingSession[k]!;
      const at = this.pendingAt[k]!;
      const frame = this.pendingFrame[k]!;
      const rule = this.pendingRule[k];
      this.pendingSession[k] = undefined;
      this.pendingRule[k] = undefined;
      session.pending--;
      const outputs = rule?.outputs ?? [];
      for (let o = 0; o < outputs.length; o++) {
        const output = outputs[o]!;
        const status = session.buffer.copyStatusOf(at, o);
        if (output.refusedCount === 0 || (status !== COPY_RAW && status !== COPY_SOCKET)) continue;
        for (let r = 0; r < output.refusedCount; r++) {
          if (output.refusedFrames[r] === frame) session.buffer.refuse(at, o, output.refusedErrnos[r]!);
        }
      }
      const outcome = copiesLeft[frame]! > 0 ? FORWARDED : EGRESS_FAILED;
      session.buffer.setOutcome(at, outcome);
      if ((session.dropsOnly && outcome === FORWARDED) || session.done) session.buffer.withdraw(at);
      else session.recorded++;
    }
    this.pendingCount = 0;
    for (const session of this.sessions) {
      if (session.dropsOnly && session.written > 0) session.buffer.compact(session.written);
      session.written = 0;
    }
  }
}
