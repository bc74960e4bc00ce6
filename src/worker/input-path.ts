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
import type { ForwardingRule } from './forwarding-rule.js';
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
  /** The same rules by groupKey, for the per-packet lookup (a group rarely has more than one port). */
  private readonly rulesByGroup = new Map<number, ForwardingRule[]>();
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
    this.indexByGroup();
    let outputs = 0;
    for (const r of this.rules.values()) outputs += r.outputs.length;
    if (this.pending.length < outputs) this.pending = new Array<OutputPath>(outputs);
  }

  removeRule(rule: ForwardingRule): void {
    if (this.rules.get(rule.key) === rule) this.rules.delete(rule.key);
    this.indexByGroup();
  }

  private indexByGroup(): void {
    this.rulesByGroup.clear();
    for (const rule of this.rules.values()) {
      const list = this.rulesByGroup.get(rule.groupKey);
      if (list) list.push(rule);
      else this.rulesByGroup.set(rule.groupKey, [rule]);
    }
  }

  /** The rule for a (group key, port), or undefined. */
  private findRule(group: number, port: number): ForwardingRule | undefined {
    const list = this.rulesByGroup.get(group);
    if (list === undefined) return undefined;
    for (let i = 0; i < list.length; i++) if (list[i]!.port === port) return list[i];
    return undefined;
  }

  get ruleCount(): number {
    return this.rules.size;
  }

  /**
   * Takes ready slots in batches: parse, look up, queue one iovec per output (pointing into the
   * slot, no copy), then one sendmmsg per output with copies, then hand the slots back. A slot
   * returns to the kernel only after the sends that point into it returned. Yields after
   * `batchesPerWakeup` batches; the level-triggered poll calls again if more is waiting.
   * Returns true when it left the ring empty (caught up), false when it stopped at its budget.
   */
  drain(): boolean {
    const { words, halfWords, bytes, frameSize, frameCount, region } = this.ring;
    const slotWords = frameSize >>> 2;
    const batchSize = this.settings.batchSize;
    const counters = this.counters;
    const drops = counters.drops;
    const parsed = this.parsed;
    let lastGroup = 0; // 0.0.0.0 is never a group
    let lastPort = -1;
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
        // Flows arrive in runs, so remembering the last match skips most lookups (~20 ns each).
        // groupKey inlined by hand: passing dstAddr (a double above 2^31) to a call that V8 does
        // not inline boxes it on the heap, once per packet.
        const group = parsed.dstAddr | 0;
        const port = parsed.dstPort;
        const rule = group === lastGroup && port === lastPort ? lastRule : this.findRule(group, port);
        lastGroup = group;
        lastPort = port;
        lastRule = rule;
        if (rule === undefined) {
          drops[NO_RULE]!++;
          continue;
        }
        counters.forwarded++;
        rule.packetsIn++;
        rule.bytesIn += parsed.payloadLength;
        const outputs = rule.outputs;
        for (let o = 0; o < outputs.length; o++) {
          const output = outputs[o]!;
          if (output.queued === 0) this.pending[this.pendingCount++] = output;
          output.queue(region, parsed.payloadOffset, parsed.payloadLength);
        }
      }
      // A frame at our cursor means the kernel's write position has met ours.
      if (taken > 0) this.positionUnknown = false;
      else {
        // After taking over a ring, our position and the kernel's start out unrelated: the first
        // frame it writes tells where it is. (Never done otherwise: with several CPUs filling the
        // ring, a later slot can be ready before an earlier one, and jumping would skip it.)
        if (this.positionUnknown && this.findWaitingFrame()) {
          this.positionUnknown = false;
          b--;
          continue;
        }
        return true;
      }
      for (let p = 0; p < this.pendingCount; p++) this.pending[p]!.flush();
      this.pendingCount = 0;
      let release = first;
      for (let i = 0; i < taken; i++) {
        Atomics.store(words, release * slotWords, TP_STATUS_KERNEL);
        release = release + 1 === frameCount ? 0 : release + 1;
      }
      this.cursor = slot;
      if (taken < batchSize) return true;
    }
    return false;
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
    const frameCount = this.ring.frameCount;
    for (let i = 1; i <= frameCount; i++) {
      const slot = (this.cursor + i) % frameCount;
      const previous = (slot + frameCount - 1) % frameCount;
      if (this.isWaiting(slot) && !this.isWaiting(previous)) {
        this.cursor = slot;
        return true;
      }
    }
    return false;
  }

  private isWaiting(slot: number): boolean {
    return (Atomics.load(this.ring.words, slot * (this.ring.frameSize >>> 2)) & TP_STATUS_USER) !== 0;
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
