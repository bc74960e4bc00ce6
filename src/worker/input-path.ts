import { DropReason, ParsedFrame, parseFrame } from '../packet/frame.js';
import type { DataPlaneSettings } from '../protocol/worker-messages.js';
import type { ReadableWatch } from '../sys/libc.js';
import { acceptFrames, readPacketStatistics, refuseFrames } from '../sys/packet-socket.js';
import {
  PACKET_OTHERHOST,
  type RingHistory,
  RxRing,
  ringGeometryFor,
  TP2_SLL_PKTTYPE,
  TP2_LEN,
  TP2_MAC,
  TP2_SNAPLEN,
  TP2_VLAN_TCI,
  TP_STATUS_KERNEL,
  TP_STATUS_USER,
  TP_STATUS_VLAN_VALID,
} from '../sys/rx-ring.js';
import { closeFd } from '../sys/socket.js';
import type { ForwardingRule } from './forwarding-rule.js';
import type { HostAddresses } from './host-addresses.js';
import { InputRules } from './input-rules.js';
import type { InputTrace } from './input-trace.js';
import type { OutputPath } from './output-path.js';
import type { ReadinessSource } from './readiness-loop.js';
import { ReadPosition, TP_STATUS_COUNTED } from './ring-takeover.js';
import {
  FrameLog,
  HANDOVER_RELAY_WHOLE,
  HANDOVER_SKIP,
  logSlot,
  NOTHING_TO_PLAN,
  planNewRing,
  waitingRun,
  type HandoverReport,
} from './ring-handover.js';
import {
  EGRESS_FAILED,
  FORWARDED,
  NO_OUTPUT,
  NO_RULE,
  OTHER_VLAN,
  OVERSIZE,
  OWN_SOURCE,
  TOO_MANY_VLAN_TAGS,
  TTL_EXPIRED,
  WORKER_RESTART,
} from '../packet/frame-outcomes.js';
import {
  OUTPUT_TTL_EXPIRED,
  RULE_BYTES_IN,
  RULE_EGRESS_FAILED,
  RULE_LAST_PACKET_AT,
  RULE_NO_OUTPUT,
  RULE_OWN_SOURCE,
  RULE_PACKETS_IN,
  RULE_TTL_EXPIRED,
} from '../protocol/counter-layout.js';
import type { WorkerCounterSet } from './worker-counters.js';

/**
 * The data path of one input interface: its RX ring, the rules keyed by (VLAN, group, port), and
 * the loop that turns ring slots into output batches. Everything here runs per packet or per
 * batch; nothing allocates.
 */
export class InputPath {
  readonly interfaceName: string;
  private fd: number;
  private ring: RxRing;
  private readonly settings: DataPlaneSettings;
  private readonly counters: WorkerCounterSet;
  private readonly hostAddresses: HostAddresses;
  private readonly readiness: ReadinessSource;
  private readonly rules = new InputRules();
  private readonly parsed = new ParsedFrame();
  /** Outputs with queued copies in the current batch, flushed together. */
  private pending: OutputPath[] = [];
  private pendingCount = 0;
  /**
   * The batch's forwarded frames, for the few cases where the kernel refuses copies: by frame
   * index in the batch, its copies not refused yet; and each forwarded frame's index and rule.
   * Preallocated: filling them is three stores per forwarded frame.
   */
  private readonly copiesLeft: Int32Array;
  private readonly forwardedFrames: Int32Array;
  private readonly frameRules: (ForwardingRule | undefined)[];
  private forwardedCount = 0;
  /** Where to read the ring: a new ring from slot 0, a dead worker's where the kernel writes. */
  private position: ReadPosition;
  private watch: ReadableWatch;
  /** During a handover: frames taken from the old ring are fingerprinted here, after the first `handoverIgnore`. */
  private handoverLog: FrameLog | undefined;
  private handoverIgnore = 0;
  /**
   * After a handover: what to do with each of the new ring's first frames (HANDOVER_* codes),
   * and how many of them are still to come.
   */
  private handoverActions: Uint8Array = new Uint8Array(0);
  private handoverIndex = 0;
  private handoverRemaining = 0;
  /** Set while a trace takes this input's frames (worker-traces.ts); see drain. */
  trace: InputTrace | undefined;

  constructor(
    fd: number,
    interfaceName: string,
    mtu: number,
    settings: DataPlaneSettings,
    counters: WorkerCounterSet,
    hostAddresses: HostAddresses,
    readiness: ReadinessSource,
    /** What mcrd knows of the socket's ring; unsaid (tests), whether the ring was already there. */
    ringHistory?: RingHistory,
  ) {
    this.fd = fd;
    this.interfaceName = interfaceName;
    this.settings = settings;
    this.counters = counters;
    this.hostAddresses = hostAddresses;
    this.readiness = readiness;
    this.copiesLeft = new Int32Array(settings.batchSize);
    this.forwardedFrames = new Int32Array(settings.batchSize);
    this.frameRules = new Array<ForwardingRule | undefined>(settings.batchSize).fill(undefined);
    this.ring = RxRing.attach(fd, ringGeometryFor(mtu, settings.ringBytes), ringHistory);
    // A ring a dead worker left on this socket (see ring-takeover.ts): its frames may have been
    // sent already (the worker died between send and release), so they are dropped and counted
    // as worker_restart, never forwarded; reading starts where the kernel's next frames do.
    this.position = new ReadPosition(this.ring, this.ring.inherited, counters.outcomes, WORKER_RESTART);
    // Level-triggered: a drain that stops at its batch budget is called again if frames wait.
    this.watch = readiness.watch(fd, () => this.drain());
  }

  addRule(rule: ForwardingRule): void {
    this.rules.add(rule);
    if (this.pending.length < this.rules.outputCount)
      this.pending = new Array<OutputPath>(this.rules.outputCount);
  }

  removeRule(rule: ForwardingRule): void {
    this.rules.remove(rule);
  }

  get ruleCount(): number {
    return this.rules.size;
  }

  /** Frames per batch at most (a trace sizes its per-batch tables by it). */
  get batchCapacity(): number {
    return this.copiesLeft.length;
  }

  /**
   * Takes ready slots in batches: parse, look up, check, queue one iovec per attached output
   * (pointing into the slot, no copy), then one sendmmsg per output with copies, then hand the
   * slots back. A slot returns to the kernel only after the sends that point into it returned.
   * Yields after `batchesPerWakeup` batches; the level-triggered poll calls again if more is
   * waiting. Returns true when it left the ring empty (caught up), false when it stopped at its
   * budget.
   *
   * Per frame, in order (the first that applies decides the outcome):
   *   frame larger than its slot → oversize; parser's verdict → its reason;
   *   a multicast frame whose tag the kernel cleared (PACKET_OTHERHOST) → other_vlan;
   *   two or more VLAN tags, the stripped one included → too_many_vlan_tags;
   *   no rule for (VLAN, group, port) → other_vlan (a VLAN no rule here names) or no_rule;
   *   source is a host address → own_source; no attached output → no_output;
   *   every output's copy would leave with TTL 0 → ttl_expired; else forwarded.
   * From the rule lookup on, the rule counts the frame in packetsIn/bytesIn.
   * Costs (bench/worker-decisions.ts, this 2-vCPU VM, medians): a frame that ends before any
   * copy, parse and slot hand-back included, about 60 ns; the VLAN check about 2 ns of that; a
   * source that changes every frame +5 ns; TTL and TOS about 1.3 ns per output; RTP stream health
   * (a rule with the rtp option) about 7 ns, nothing measurable for rules without it.
   *
   * Tracing (input-trace.ts) hooks in at three points, each behind one test of `trace`, a local
   * read once per drain and undefined unless a trace takes this input: per frame, as it is taken
   * (the previous frame's outcome is then in the counters); per batch, before the flush and after
   * it. Off, that is one predictable branch per frame and nothing allocated: bench/trace-cost.ts
   * measured drain within 1 ns per frame of the code before tracing existed (55 ns no_rule, 62 ns
   * ttl_expired); on, +40-180 ns per frame (docs/PERFORMANCE.md, Tracing).
   */
  drain(): boolean {
    const { words, halfWords, bytes, frameSize, frameCount, region } = this.ring;
    const slotWords = frameSize >>> 2;
    const batchSize = this.settings.batchSize;
    const outcomes = this.counters.outcomes;
    const parsed = this.parsed;
    const hostAddresses = this.hostAddresses;
    // Flows arrive in runs: the last lookup and the last source check are remembered. Both keys
    // are signed 32-bit (`| 0`): unsigned addresses above 2^31 would be heap numbers.
    let lastVlan = -1; // no frame has VLAN -1: the first frame looks up
    let lastGroup = 0;
    let lastPort = -1;
    let lastRule: ForwardingRule | undefined;
    let lastMiss = NO_RULE;
    let lastRuleSource = 0;
    let lastSource = 0;
    let lastSourceOwn = hostAddresses.has(0);
    const position = this.position;
    if (position.unknown && !position.find()) return true;
    // The rules' last-packet time, to the wakeup (one clock read per drain, a store per frame).
    const now = Date.now();
    const trace = this.trace;

    for (let b = 0; b < this.settings.batchesPerWakeup; b++) {
      const first = position.cursor;
      let slot = first;
      let taken = 0;
      // A batch stops at a fence (only in a taken-over ring's first lap): one test per batch.
      const limit = position.fenceCount === 0 ? batchSize : position.limit(batchSize);
      // The status word of the last frame whose outcome is counted but whose slot is not yet
      // marked so (TP_STATUS_COUNTED); -1: none.
      let unmarked = -1;
      while (taken < limit) {
        const statusAt = slot * slotWords;
        const status = Atomics.load(words, statusAt);
        if ((status & TP_STATUS_USER) === 0) break;
        // The previous frame is counted: its slot says so, for a successor that takes this ring
        // over if this worker is killed before the batch goes back (it counts only unmarked
        // frames as worker_restart). A plain store: the slot is this worker's until released.
        if (unmarked >= 0) words[unmarked]! |= TP_STATUS_COUNTED;
        unmarked = statusAt;
        if (trace !== undefined) trace.frame(slot, outcomes);
        taken++;
        const length = words[statusAt + (TP2_LEN >>> 2)]!;
        const captured = words[statusAt + (TP2_SNAPLEN >>> 2)]!;
        const slotStart = slot * frameSize;
        const start = slotStart + halfWords[(slotStart + TP2_MAC) >>> 1]!;
        slot = slot + 1 === frameCount ? 0 : slot + 1;
        if (this.handoverRemaining !== 0) {
          // A new ring's first frames after a handover: some were taken from the old ring already.
          this.handoverRemaining--;
          const action = this.handoverActions[this.handoverIndex++];
          if (action === HANDOVER_SKIP) continue;
          // The old ring's cut-short copy was counted oversize; this whole one takes its place.
          if (action === HANDOVER_RELAY_WHOLE) outcomes[OVERSIZE]!--;
        }
        if (captured < length) {
          outcomes[OVERSIZE]!++;
          continue;
        }
        const reason = parseFrame(bytes, start, captured, parsed);
        if (reason !== DropReason.OK) {
          outcomes[reason]!++;
          continue;
        }
        // The kernel strips the outer tag before packet sockets see the frame and reports it in
        // the slot header; tags still in the frame are inner ones (or, rarely, one it left).
        // VLAN id 0 (a priority tag) is untagged. Only a socket bound to ETH_P_ALL gets the
        // report: when no VLAN device takes the frame, the kernel clears the tag before it
        // hands the frame to protocol sockets (ETH_P_IP) and marks it PACKET_OTHERHOST if its
        // VLAN id was not 0. A multicast frame marked so was tagged, with a VLAN unknown here:
        // other_vlan, never relayed as untagged (one byte read per frame; the VLAN check in all
        // costs about 2 ns).
        let tags = parsed.vlanCount;
        let vlan: number;
        if ((status & TP_STATUS_VLAN_VALID) !== 0) {
          tags++;
          vlan = halfWords[(slotStart + TP2_VLAN_TCI) >>> 1]! & 0xfff;
        } else if (bytes[slotStart + TP2_SLL_PKTTYPE] === PACKET_OTHERHOST && (bytes[start]! & 1) !== 0) {
          outcomes[OTHER_VLAN]!++;
          continue;
        } else vlan = tags === 0 ? 0 : parsed.vlanId;
        if (tags > 1) {
          outcomes[TOO_MANY_VLAN_TAGS]!++;
          continue;
        }
        // Lookup skipped for a frame of the same flow as the last (~20 ns saved). groupKey
        // inlined by hand: passing dstAddr (a double above 2^31) to a call that V8 does not
        // inline boxes it on the heap, once per packet.
        const group = parsed.dstAddr | 0;
        const port = parsed.dstPort;
        const source = parsed.srcAddr | 0;
        if (group !== lastGroup || port !== lastPort || vlan !== lastVlan || source !== lastRuleSource) {
          lastGroup = group;
          lastPort = port;
          lastVlan = vlan;
          lastRuleSource = source;
          lastRule = this.rules.find(vlan, group, port, source);
          lastMiss = vlan !== 0 && !this.rules.namesVlan(vlan) ? OTHER_VLAN : NO_RULE;
        }
        const rule = lastRule;
        if (rule === undefined) {
          outcomes[lastMiss]!++;
          continue;
        }
        // The rule's cells in the region the supervisor reads: plain typed-array adds.
        const counts = rule.counters;
        counts[RULE_PACKETS_IN]!++;
        counts[RULE_BYTES_IN]! += parsed.payloadLength;
        counts[RULE_LAST_PACKET_AT] = now;
        // RTP stream health, for rules that ask for it; one field test for the others.
        const rtp = rule.rtp;
        if (rtp !== null) rtp.observe(bytes, parsed.payloadOffset, parsed.payloadLength);
        // A frame from one of this host's addresses is a loop: never relay it, whatever its TTL.
        // One Set lookup (~5 ns) when the source differs from the previous frame's, else none.
        if (source !== lastSource) {
          lastSource = source;
          lastSourceOwn = hostAddresses.has(source);
        }
        if (lastSourceOwn) {
          outcomes[OWN_SOURCE]!++;
          counts[RULE_OWN_SOURCE]!++;
          continue;
        }
        const live = rule.live;
        if (live.length === 0) {
          outcomes[NO_OUTPUT]!++;
          counts[RULE_NO_OUTPUT]!++;
          continue;
        }
        // Per copy, as a router would: TTL one less than the input's (capped by the output),
        // or the output's fixed TTL; the input's ECN always, its DSCP unless the output sets one
        // (about 1.3 ns per output).
        const ttlLeft = parsed.ttl - 1;
        const ecn = parsed.ecn;
        const inputTos = (parsed.dscp << 2) | ecn;
        const frame = taken - 1;
        let copies = 0;
        for (let o = 0; o < live.length; o++) {
          const output = live[o]!;
          const ttl = output.ttlFixed || output.ttl < ttlLeft ? output.ttl : ttlLeft;
          if (ttl <= 0) {
            output.counters[OUTPUT_TTL_EXPIRED]!++;
            continue;
          }
          const dscpBits = output.dscpBits;
          if (output.queued === 0) this.pending[this.pendingCount++] = output;
          output.queue(
            region,
            parsed.payloadOffset,
            parsed.payloadLength,
            ttl,
            dscpBits < 0 ? inputTos : dscpBits | ecn,
            frame,
          );
          copies++;
        }
        if (copies > 0) {
          // Forwarded, unless the kernel refuses every copy: counted (and marked) after the flush.
          unmarked = -1;
          this.copiesLeft[frame] = copies;
          this.frameRules[this.forwardedCount] = rule;
          this.forwardedFrames[this.forwardedCount++] = frame;
        } else {
          outcomes[TTL_EXPIRED]!++;
          counts[RULE_TTL_EXPIRED]!++;
        }
      }
      if (unmarked >= 0) words[unmarked]! |= TP_STATUS_COUNTED;
      // Nothing ready at the cursor: caught up. (Never look further: with several CPUs filling
      // the ring, a later slot can be ready before an earlier one, and jumping would skip it.)
      if (taken === 0) return true;
      if (trace !== undefined)
        trace.framesTaken(this.ring, this.rules, outcomes, this.forwardedFrames, this.forwardedCount);
      for (let p = 0; p < this.pendingCount; p++) this.pending[p]!.flush(this.copiesLeft);
      this.pendingCount = 0;
      if (trace !== undefined) trace.sent(this.copiesLeft);
      if (this.forwardedCount > 0) this.countForwarded(first);
      if (this.handoverLog !== undefined) this.logBatch(first, taken);
      let release = first;
      for (let i = 0; i < taken; i++) {
        Atomics.store(words, release * slotWords, TP_STATUS_KERNEL);
        release = release + 1 === frameCount ? 0 : release + 1;
      }
      position.moveTo(slot);
      if (taken < batchSize) return true;
    }
    return false;
  }

  /**
   * After the flush: each frame that had copies queued is forwarded if the kernel took at least
   * one, else egress_failed (its rule's too); then its slot is marked counted. Counted only now,
   * so a worker killed before or during the send leaves these frames unmarked, and its successor
   * counts them as worker_restart: never forwarded when none of their copies was sent. About
   * 2 ns per forwarded frame (bench/worker-decisions.ts).
   */
  private countForwarded(first: number): void {
    const outcomes = this.counters.outcomes;
    const { words, frameSize, frameCount } = this.ring;
    const slotWords = frameSize >>> 2;
    for (let i = 0; i < this.forwardedCount; i++) {
      const frame = this.forwardedFrames[i]!;
      if (this.copiesLeft[frame]! > 0) outcomes[FORWARDED]!++;
      else {
        outcomes[EGRESS_FAILED]!++;
        this.frameRules[i]!.counters[RULE_EGRESS_FAILED]!++;
      }
      const slot = first + frame < frameCount ? first + frame : first + frame - frameCount;
      words[slot * slotWords]! |= TP_STATUS_COUNTED;
    }
    this.forwardedCount = 0;
  }

  /** During a handover: fingerprints a batch of old-ring frames before their slots go back. */
  private logBatch(first: number, taken: number): void {
    let slot = first;
    for (let i = 0; i < taken; i++) {
      if (this.handoverIgnore > 0) this.handoverIgnore--;
      else logSlot(this.ring, slot, this.handoverLog!);
      slot = slot + 1 === this.ring.frameCount ? 0 : slot + 1;
    }
  }

  /**
   * Moves this input to a new AF_PACKET socket whose ring has slots for a larger MTU
   * (input.attach for an interface the worker has). A fresh socket from mcrd is bound and in a
   * fanout group that spreads flows like the old one's, and refuses frames: the new socket is
   * told to take its frames, then the old one to refuse them (it stays bound and in its group
   * until every worker has handed over, so neither group moves a flow to another worker); for
   * the moment between the two, both rings get each frame. The old ring is then finished, its
   * frames fingerprinted, the old socket closed and unmapped, and the new ring's first frames
   * that repeat, per flow, the old ring's last ones are skipped (ring-handover.ts has the steps,
   * the kernel facts they rest on, and what happens when a ring fills meanwhile). Skipped frames
   * are not counted again. An in-use socket (a replacement finishing a dead worker's handover:
   * mcrd switched both sockets already) is taken over like any inherited ring. If the new ring
   * cannot be set up, this throws with nothing changed (the old socket stays in use).
   */
  handOver(fd: number, mtu: number, ringHistory?: RingHistory): HandoverReport {
    const oldRing = this.ring;
    const oldFd = this.fd;
    if (this.position.unknown) this.position.find();
    // Frames already waiting in the old ring reached it before the new socket took any.
    const before = this.position.unknown ? 0 : waitingRun(oldRing, this.position.cursor);
    const ring = RxRing.attach(fd, ringGeometryFor(mtu, this.settings.ringBytes), ringHistory);
    let watch: ReadableWatch;
    try {
      watch = this.readiness.watch(fd, () => this.drain());
    } catch (err) {
      ring.detach();
      throw err;
    }
    const fresh = !ring.inherited;
    if (fresh) this.switchSockets(fd, oldFd, ring, watch);
    // Past this, the new ring has certainly filled up (and dropped) while the old one was being
    // read: the worker cannot keep up; what is still in the old ring is left there.
    const limit = oldRing.frameCount + 2 * ring.frameCount;
    const tail = new FrameLog(limit + this.settings.batchesPerWakeup * this.settings.batchSize);
    this.handoverLog = fresh ? tail : undefined;
    this.handoverIgnore = before;
    let caughtUp = false;
    let taken = this.counters.framesSeen;
    try {
      while (!caughtUp && this.counters.framesSeen - taken < limit) caughtUp = this.drain();
    } finally {
      this.handoverLog = undefined;
    }
    taken = this.counters.framesSeen - taken;
    const leftInOldRing = caughtUp ? 0 : waitingRun(oldRing, this.position.cursor);
    const dropsBefore = this.counters.ringDrops;
    this.collectRingDrops();
    const oldRingDrops = this.counters.ringDrops - dropsBefore;
    this.watch.stop();
    closeFd(oldFd);
    oldRing.detach();

    this.fd = fd;
    this.ring = ring;
    this.watch = watch;
    this.position = new ReadPosition(ring, !fresh, this.counters.outcomes, WORKER_RESTART);
    const plan = fresh ? planNewRing(tail, ring) : NOTHING_TO_PLAN;
    this.handoverActions = plan.actions;
    this.handoverIndex = 0;
    this.handoverRemaining = plan.length;
    return {
      takenFromOld: taken,
      waitingInNew: plan.waiting,
      skipped: plan.skipped,
      recovered: plan.recovered,
      leftInOldRing,
      oldRingDrops,
    };
  }

  /**
   * The new socket takes frames, then the old one refuses them: in that order, so every frame
   * reaches at least one ring. If the old one cannot be made to refuse, the new one refuses
   * again and the handover is off (nothing changed).
   */
  private switchSockets(fd: number, oldFd: number, ring: RxRing, watch: ReadableWatch): void {
    try {
      acceptFrames(fd, this.interfaceName);
      try {
        refuseFrames(oldFd, this.interfaceName);
      } catch (err) {
        refuseFrames(fd, this.interfaceName);
        throw err;
      }
    } catch (err) {
      watch.stop();
      ring.detach();
      throw err;
    }
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
