import { DropReason, ParsedFrame, parseFrame } from '../packet/frame.js';
import type { DataPlaneSettings } from '../protocol/worker-messages.js';
import type { ReadableWatch } from '../sys/libc.js';
import { readPacketStatistics } from '../sys/packet-socket.js';
import {
  RxRing,
  ringGeometryFor,
  TP2_LEN,
  TP2_MAC,
  TP2_SNAPLEN,
  TP_STATUS_KERNEL,
  TP_STATUS_USER,
} from '../sys/rx-ring.js';
import { closeFd } from '../sys/socket.js';
import { forwardingKey, type ForwardingRule } from './forwarding-rule.js';
import type { OutputPath } from './output-path.js';
import type { ReadinessSource } from './readiness-loop.js';
import { NO_RULE, OVERSIZE, WORKER_RESTART, type WorkerCounterSet } from './worker-counters.js';

/**
 * The data path of one input interface: its RX ring, the rules keyed by (group, port), and the
 * loop that turns ring slots into output batches. Everything here runs per packet or per batch;
 * nothing allocates.
 */
export class InputPath {
  readonly interfaceName: string;
  private readonly fd: number;
  private readonly ring: RxRing;
  private readonly settings: DataPlaneSettings;
  private readonly counters: WorkerCounterSet;
  private readonly rules = new Map<number, ForwardingRule>();
  private readonly parsed = new ParsedFrame();
  /** Outputs with queued copies in the current batch, flushed together. */
  private pending: OutputPath[] = [];
  private pendingCount = 0;
  private cursor = 0;
  /** Set while the cursor has not yet met the kernel's write position in an inherited ring. */
  private positionUnknown = false;
  private readonly watch: ReadableWatch;

  constructor(
    fd: number,
    interfaceName: string,
    mtu: number,
    settings: DataPlaneSettings,
    counters: WorkerCounterSet,
    readiness: ReadinessSource,
  ) {
    this.fd = fd;
    this.interfaceName = interfaceName;
    this.settings = settings;
    this.counters = counters;
    this.ring = RxRing.attach(fd, ringGeometryFor(mtu, settings.ringBytes));
    if (this.ring.inherited) {
      this.discardInheritedFrames();
      this.positionUnknown = true;
    }
    // Level-triggered: a drain that stops at its batch budget is called again if frames wait.
    this.watch = readiness.watch(fd, () => this.drain());
  }

  addRule(rule: ForwardingRule): void {
    this.rules.set(rule.key, rule);
    let outputs = 0;
    for (const r of this.rules.values()) outputs += r.outputs.length;
    if (this.pending.length < outputs) this.pending = new Array<OutputPath>(outputs);
  }

  removeRule(rule: ForwardingRule): void {
    if (this.rules.get(rule.key) === rule) this.rules.delete(rule.key);
  }

  get ruleCount(): number {
    return this.rules.size;
  }

  /**
   * Takes ready slots in batches: parse, look up, queue one iovec per output (pointing into the
   * slot, no copy), then one sendmmsg per output with copies, then hand the slots back. A slot
   * returns to the kernel only after the sends that point into it returned. Yields after
   * `batchesPerWakeup` batches; the level-triggered poll calls again if more is waiting.
   */
  drain(): void {
    const { words, halfWords, bytes, frameSize, frameCount, baseAddress } = this.ring;
    const slotWords = frameSize >>> 2;
    const batchSize = this.settings.batchSize;
    const counters = this.counters;
    const drops = counters.drops;
    const parsed = this.parsed;
    const rules = this.rules;
    let lastKey = -1;
    let lastRule: ForwardingRule | undefined;

    for (let b = 0; b < this.settings.batchesPerWakeup; b++) {
      const first = this.cursor;
      let slot = first;
      let taken = 0;
      while (taken < batchSize) {
        const statusAt = slot * slotWords;
        if ((Atomics.load(words, statusAt) & TP_STATUS_USER) === 0) break;
        taken++;
        counters.framesSeen++;
        const length = words[statusAt + (TP2_LEN >>> 2)]!;
        const captured = words[statusAt + (TP2_SNAPLEN >>> 2)]!;
        const start = slot * frameSize + halfWords[(slot * frameSize + TP2_MAC) >>> 1]!;
        slot = slot + 1 === frameCount ? 0 : slot + 1;
        if (captured < length) {
          drops[OVERSIZE]!++;
          continue;
        }
        const reason = parseFrame(bytes, start, captured, parsed);
        if (reason !== DropReason.OK) {
          drops[reason]!++;
          continue;
        }
        // Flows arrive in runs, so remembering the last match skips most Map lookups (~20 ns each).
        const key = forwardingKey(parsed.dstAddr, parsed.dstPort);
        const rule = key === lastKey ? lastRule : rules.get(key);
        lastKey = key;
        lastRule = rule;
        if (rule === undefined) {
          drops[NO_RULE]!++;
          continue;
        }
        counters.forwarded++;
        rule.packetsIn++;
        rule.bytesIn += parsed.payloadLength;
        const payloadAddress = baseAddress + parsed.payloadOffset;
        const outputs = rule.outputs;
        for (let o = 0; o < outputs.length; o++) {
          const output = outputs[o]!;
          if (output.queued === 0) this.pending[this.pendingCount++] = output;
          output.queue(payloadAddress, parsed.payloadLength);
        }
      }
      if (taken === 0) {
        // After taking over a ring, our position and the kernel's start out unrelated: the first
        // frame it writes tells where it is. (Never done otherwise: with several CPUs filling the
        // ring, a later slot can be ready before an earlier one, and jumping would skip it.)
        if (this.positionUnknown && this.findWaitingFrame()) {
          this.positionUnknown = false;
          b--;
          continue;
        }
        return;
      }
      for (let p = 0; p < this.pendingCount; p++) this.pending[p]!.flush();
      this.pendingCount = 0;
      let release = first;
      for (let i = 0; i < taken; i++) {
        Atomics.store(words, release * slotWords, TP_STATUS_KERNEL);
        release = release + 1 === frameCount ? 0 : release + 1;
      }
      this.cursor = slot;
      if (taken < batchSize) return;
    }
  }

  /**
   * Releases what a dead worker left in the ring: those frames may have been sent already (the
   * worker died between send and release), so they are counted as worker_restart drops rather
   * than forwarded twice.
   */
  private discardInheritedFrames(): void {
    const { words, frameSize, frameCount } = this.ring;
    for (let slot = 0; slot < frameCount; slot++) {
      const statusAt = slot * (frameSize >>> 2);
      if ((Atomics.load(words, statusAt) & TP_STATUS_USER) !== 0) {
        this.counters.framesSeen++;
        this.counters.drops[WORKER_RESTART]!++;
        Atomics.store(words, statusAt, TP_STATUS_KERNEL);
      }
    }
  }

  /**
   * Moves the cursor to the frame the kernel filled first among those waiting. The kernel fills
   * slots in order, so that is the first waiting slot after a run of free ones.
   */
  private findWaitingFrame(): boolean {
    const { words, frameSize, frameCount } = this.ring;
    const slotWords = frameSize >>> 2;
    const waiting = (slot: number): boolean => (Atomics.load(words, slot * slotWords) & TP_STATUS_USER) !== 0;
    for (let i = 1; i <= frameCount; i++) {
      const slot = (this.cursor + i) % frameCount;
      const previous = (slot + frameCount - 1) % frameCount;
      if (waiting(slot) && !waiting(previous)) {
        this.cursor = slot;
        return true;
      }
    }
    return false;
  }

  /** Adds the kernel's drop count since the last read (PACKET_STATISTICS resets when read). */
  collectRingDrops(): void {
    this.counters.ringDrops += readPacketStatistics(this.fd).drops;
  }

  close(): void {
    this.watch.stop();
    this.ring.detach();
    closeFd(this.fd);
  }
}
