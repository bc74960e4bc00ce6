import { attachXdp, type XdpLink, type XdpMode } from '../sys/bpf-link.js';
import { hostU32, type BpfMap } from '../sys/bpf-map.js';
import { loadProgram, type BpfProgram } from '../sys/bpf-program.js';
import { openRawTracepoint, type RawTracepoint } from '../sys/bpf-tracepoint.js';
import { openAll } from '../sys/closables.js';
import { egressProgram } from './egress-program.js';
import { ingressProgram } from './ingress-program.js';
import { createInputMaps, SlotPool, type InputMaps } from './input-maps.js';
import { clearOutputSet, writeOutputSet } from './output-sets.js';
import { DEVMAP_XMIT_TRACEPOINT, refusalProgram } from './refusal-program.js';
import type { OutputHeader } from './output-header.js';
import { XdpError } from './xdp-error.js';
import {
  encodeAddressKey,
  encodeRuleKey,
  encodeRuleValue,
  LINK_COPIES_SIZE,
  MAX_LINKS,
  MAX_OUTPUT_SETS,
  MAX_OUTPUTS,
  MAX_RULES,
  minimumInputTtl,
  OUTPUT_COUNTS_SIZE,
  RULE_COUNTS_SIZE,
  RULE_DEVMAP_SLOTS,
  ruleKeyText,
  sumOutputCounts,
  sumRuleCounts,
  type OutputCounts,
  type RuleCounts,
  type RuleKey,
} from './xdp-maps.js';

/** One output of an offloaded rule: its header fields and the link it leaves by. */
export interface XdpOutput extends OutputHeader {
  /** The supervisor's name for the output, stable across rule updates (its counters follow it). */
  id: string;
  /** The output link. */
  ifindex: number;
}

export interface XdpRuleCounters {
  key: RuleKey;
  counts: RuleCounts;
  outputs: { id: string; counts: OutputCounts }[];
}

interface OutputState {
  output: XdpOutput;
  /** Its row of output_counts, kept while the output (by id) stays in the rule. */
  counterSlot: number;
  /** ttl_expired counted for this output before the rule's current output set (see below). */
  carriedTtlExpired: number;
}

interface RuleState {
  key: RuleKey;
  slot: number;
  outputSet: number;
  devmap: BpfMap;
  outputs: OutputState[];
  minTtl: number;
  /** The rule's ttl_expired count when its current output set took effect. */
  ttlExpiredBase: number;
}

/**
 * The XDP path of one input interface: the ingress program attached through a bpf_link, the
 * egress program every devmap entry runs, their maps, and each offloaded rule's output set.
 * Rules are added, changed and removed by map updates while the programs run: a rule's new
 * output set (devmap and output fields) is built whole, then the rule switches to it in one
 * update of its entry; no other rule sees anything, and the rule goes from its old outputs to
 * its new ones between two frames.
 *
 * Counters: a frame that no output could send with TTL ≥ 1 is dropped at the input (no clone)
 * and counted there as the rule's ttl_expired; the worker path also counts it for each output,
 * so readCounters() adds those to the outputs that were the rule's at the time.
 */
export class XdpInput {
  readonly ifindex: number;
  readonly mode: XdpMode;
  private readonly maps: InputMaps;
  private readonly ingress: BpfProgram;
  private readonly egress: BpfProgram;
  private readonly refusals: BpfProgram;
  private readonly refusalTracepoint: RawTracepoint;
  private readonly link: XdpLink;
  private readonly rules = new Map<string, RuleState>();
  private readonly ruleSlots = new SlotPool(MAX_RULES);
  private readonly outputSets = new SlotPool(MAX_OUTPUT_SETS);
  private readonly counterSlots = new SlotPool(MAX_OUTPUTS);
  private readonly links = new Set<number>();
  private closed = false;

  private constructor(
    ifindex: number,
    mode: XdpMode,
    maps: InputMaps,
    programs: { ingress: BpfProgram; egress: BpfProgram; refusals: BpfProgram },
    attachments: { link: XdpLink; refusalTracepoint: RawTracepoint },
  ) {
    this.ifindex = ifindex;
    this.mode = mode;
    this.maps = maps;
    this.ingress = programs.ingress;
    this.egress = programs.egress;
    this.refusals = programs.refusals;
    this.link = attachments.link;
    this.refusalTracepoint = attachments.refusalTracepoint;
  }

  /**
   * Creates the maps, loads the programs, starts counting refused copies (the refusal program on
   * its tracepoint, before any copy can be made) and attaches the ingress program: all of it, or
   * nothing.
   * Native mode only: in generic mode the kernel runs devmap programs on an skb without the
   * metadata the ingress program left (measured: every copy dropped), so outputs could not be
   * told apart.
   */
  static open(ifindex: number, mode: XdpMode, interfaceName?: string): XdpInput {
    if (mode !== 'native') {
      throw new XdpError(
        'E_XDP_MODE',
        `XDP on ${interfaceName ?? `ifindex ${ifindex}`}: only native mode relays (generic XDP does not pass metadata to devmap programs)`,
      );
    }
    return openAll((keep) => {
      const maps = createInputMaps(keep);
      const egress = keep(
        loadProgram({ name: 'mcr_egress', kind: 'xdp_devmap', instructions: egressProgram(maps, 'context') }),
      );
      const ingress = keep(
        loadProgram({ name: 'mcr_ingress', kind: 'xdp', instructions: ingressProgram(maps) }),
      );
      const refusals = keep(
        loadProgram({ name: 'mcr_refusals', kind: 'raw_tracepoint', instructions: refusalProgram(maps) }),
      );
      const refusalTracepoint = keep(openRawTracepoint(refusals, DEVMAP_XMIT_TRACEPOINT));
      const link = keep(attachXdp(ingress, ifindex, mode, interfaceName));
      return new XdpInput(ifindex, mode, maps, { ingress, egress, refusals }, { link, refusalTracepoint });
    });
  }

  /** The kernel's id of the attached program (what `ip link` shows). */
  programId(): number {
    return this.ingress.id();
  }

  /**
   * Offloads a rule, or replaces its outputs. Outputs keep their counters by id. On failure
   * nothing changed.
   */
  setRule(key: RuleKey, outputs: readonly XdpOutput[]): void {
    this.checkOpen();
    if (outputs.length > RULE_DEVMAP_SLOTS) {
      throw new RangeError(`a rule has at most ${RULE_DEVMAP_SLOTS} outputs, got ${outputs.length}`);
    }
    if (new Set(outputs.map((o) => o.id)).size !== outputs.length) {
      throw new RangeError('two outputs of one rule have the same id');
    }
    const text = ruleKeyText(key);
    const old = this.rules.get(text);
    const oldById = new Map(old?.outputs.map((o) => [o.output.id, o]));
    const newCounters = outputs.filter((o) => !oldById.has(o.id)).length;
    const links = new Set([...this.links, ...outputs.map((o) => o.ifindex)]);
    if (
      (old === undefined && this.ruleSlots.available === 0) ||
      newCounters > this.counterSlots.available ||
      this.outputSets.available === 0 ||
      links.size > MAX_LINKS
    ) {
      throw new XdpError(
        'E_XDP_FULL',
        `XDP on ifindex ${this.ifindex}: no room for ${text} (at most ${MAX_RULES} rules, ${MAX_OUTPUTS} outputs, ${MAX_LINKS} output links)`,
      );
    }
    const outputSet = this.outputSets.take()!;
    const taken: number[] = [];
    let ruleSlot = old?.slot;
    try {
      for (const ifindex of links) {
        if (this.links.has(ifindex)) continue;
        this.maps.linkCopies.update(hostU32(ifindex), new Uint8Array(LINK_COPIES_SIZE));
        this.links.add(ifindex);
      }
      const states = outputs.map((output): OutputState => {
        const before = oldById.get(output.id);
        if (before !== undefined) return { ...before, output };
        const counterSlot = this.counterSlots.take()!;
        taken.push(counterSlot);
        this.maps.outputCounts.update(hostU32(counterSlot), new Uint8Array(OUTPUT_COUNTS_SIZE));
        return { output, counterSlot, carriedTtlExpired: 0 };
      });
      const built = openAll((keep) => {
        const setOutputs = states.map((state) => ({ ...state.output, counterSlot: state.counterSlot }));
        const devmap = writeOutputSet(this.maps, outputSet, setOutputs, this.egress.fd, keep);
        if (ruleSlot === undefined) {
          ruleSlot = this.ruleSlots.take()!;
          this.maps.ruleCounts.update(hostU32(ruleSlot), new Uint8Array(RULE_COUNTS_SIZE));
        }
        this.maps.outputSets.update(hostU32(outputSet), hostU32(devmap.fd));
        // Last: from here on the ingress program relays the rule's frames to the new set.
        const value = {
          slot: ruleSlot,
          outputs: outputs.length,
          minTtl: minimumInputTtl(outputs),
          outputSet,
        };
        this.maps.rules.update(encodeRuleKey(key), encodeRuleValue(value));
        return { devmap, minTtl: value.minTtl };
      });
      const expired = this.ruleCounts(ruleSlot!).ttlExpired;
      if (old !== undefined) this.retire(old, states, expired);
      this.rules.set(text, {
        key,
        slot: ruleSlot!,
        outputSet,
        devmap: built.devmap,
        outputs: states,
        minTtl: built.minTtl,
        ttlExpiredBase: expired,
      });
    } catch (err) {
      this.clearOutputSet(outputSet, outputs);
      for (const slot of taken) this.counterSlots.give(slot);
      if (old === undefined && ruleSlot !== undefined) this.ruleSlots.give(ruleSlot);
      throw err;
    } finally {
      this.syncLinks();
    }
  }

  /** Stops offloading a rule (its frames pass to the kernel again); returns its last counters. */
  removeRule(key: RuleKey): XdpRuleCounters | undefined {
    this.checkOpen();
    const text = ruleKeyText(key);
    const rule = this.rules.get(text);
    if (rule === undefined) return undefined;
    this.maps.rules.delete(encodeRuleKey(key));
    const last = this.countersOf(rule);
    this.retire(rule, [], 0);
    this.ruleSlots.give(rule.slot);
    this.rules.delete(text);
    this.syncLinks();
    return last;
  }

  /** This host's addresses: frames from them are loops, never relayed (own_source). */
  setHostAddresses(addresses: readonly number[]): void {
    this.checkOpen();
    const wanted = new Set(addresses.map((a) => Buffer.from(encodeAddressKey(a)).toString('hex')));
    for (const key of [...this.maps.hostAddresses.keys()]) {
      if (!wanted.delete(Buffer.from(key).toString('hex'))) this.maps.hostAddresses.delete(key);
    }
    for (const hex of wanted) this.maps.hostAddresses.update(Buffer.from(hex, 'hex'), hostU32(1));
  }

  /** Every offloaded rule's counters and its outputs', summed over CPUs. */
  readCounters(): XdpRuleCounters[] {
    this.checkOpen();
    return [...this.rules.values()].map((rule) => this.countersOf(rule));
  }

  /** Detaches the program and releases every map and program. Safe to call twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const resources = [
      this.link,
      this.refusalTracepoint,
      ...[...this.rules.values()].map((r) => r.devmap),
      this.ingress,
      this.egress,
      this.refusals,
      ...Object.values(this.maps),
    ];
    for (const resource of resources) {
      try {
        resource.close();
      } catch {
        // Closing an fd does not fail in a way that leaves anything to undo.
      }
    }
    this.rules.clear();
  }

  private countersOf(rule: RuleState): XdpRuleCounters {
    const counts = this.ruleCounts(rule.slot);
    const droppedAtInput = rule.minTtl > 0 ? counts.ttlExpired - rule.ttlExpiredBase : 0;
    return {
      key: rule.key,
      counts,
      outputs: rule.outputs.map((o) => {
        const own = sumOutputCounts(this.maps.outputCounts.lookupPerCpu(hostU32(o.counterSlot)) ?? []);
        const ttlExpired = own.ttlExpired + o.carriedTtlExpired + droppedAtInput;
        return { id: o.output.id, counts: { ...own, ttlExpired } };
      }),
    };
  }

  private ruleCounts(slot: number): RuleCounts {
    return sumRuleCounts(this.maps.ruleCounts.lookupPerCpu(hostU32(slot)) ?? []);
  }

  /**
   * After a rule switched to a new output set (or was removed: `next` empty): the old set's map
   * entries and devmap go (the kernel frees the devmap once no frame uses it), counter slots of
   * outputs that left are freed, and ttl_expired counted at the input under the old set is
   * carried into the outputs that stay.
   */
  private retire(old: RuleState, next: OutputState[], expiredNow: number): void {
    const droppedAtInput = old.minTtl > 0 ? expiredNow - old.ttlExpiredBase : 0;
    const kept = new Set(next.map((o) => o.output.id));
    for (const state of next) {
      if (old.outputs.some((o) => o.output.id === state.output.id)) state.carriedTtlExpired += droppedAtInput;
    }
    for (const o of old.outputs) if (!kept.has(o.output.id)) this.counterSlots.give(o.counterSlot);
    this.clearOutputSet(
      old.outputSet,
      old.outputs.map((o) => o.output),
    );
    old.devmap.close();
  }

  /** Removes an output set's entries (devmap and output fields) and frees its number. */
  private clearOutputSet(outputSet: number, outputs: readonly XdpOutput[]): void {
    clearOutputSet(this.maps, outputSet, outputs);
    this.outputSets.give(outputSet);
  }

  /** Keeps a link_copies entry for every link an output uses, and none for others. */
  private syncLinks(): void {
    const used = new Set([...this.rules.values()].flatMap((r) => r.outputs.map((o) => o.output.ifindex)));
    for (const ifindex of new Set([...this.links, ...used])) {
      if (used.has(ifindex) && !this.links.has(ifindex)) {
        this.maps.linkCopies.update(hostU32(ifindex), new Uint8Array(LINK_COPIES_SIZE));
      } else if (!used.has(ifindex)) {
        this.maps.linkCopies.delete(hostU32(ifindex));
      }
    }
    this.links.clear();
    for (const ifindex of used) this.links.add(ifindex);
  }

  private checkOpen(): void {
    if (this.closed) throw new Error(`the XDP path of ifindex ${this.ifindex} is closed`);
  }
}
