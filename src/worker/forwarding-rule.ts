import type { RuleCounters } from '../protocol/control-api.js';
import { ruleCountersAt } from '../protocol/counter-cells.js';
import {
  RULE_BYTES_IN,
  RULE_CELLS,
  RULE_LAST_PACKET_AT,
  RULE_PACKETS_IN,
  RULE_RTP,
  RTP_CELLS,
} from '../protocol/counter-layout.js';
import type { WorkerRule } from '../protocol/worker-messages.js';
import type { RuleFingerprint } from '../rules/ruleset-hash.js';
import type { OutputPath } from './output-path.js';
import { RtpCounterSet, RtpHealth } from './rtp-health.js';

/**
 * A rule compiled for the hot path: its input key, its counters, every output (attached or not:
 * their counters live as long as the rule) and the outputs that have sockets, which are the
 * ones the hot loop copies to.
 */
export class ForwardingRule {
  readonly id: string;
  readonly inputInterface: string;
  /** VLAN id the frames must carry; 0: untagged (or priority-tagged) frames only. */
  readonly vlan: number;
  /** The sender a source-specific rule takes, as a signed 32-bit number; 0: any sender. */
  readonly source: number;
  readonly group: number;
  /** The group as a signed 32-bit number: a small integer to V8, so looking it up allocates nothing. */
  readonly groupKey: number;
  readonly port: number;
  /** Identifies the rule's flow on its input: (VLAN, group, port). */
  readonly key: string;
  /** Every output in the rule's order. */
  readonly outputs: readonly OutputPath[];
  /** The attached outputs, in rule order; rebuilt by refreshLive when one attaches or detaches. */
  live: OutputPath[] = [];
  /**
   * Its counters (counter-layout.ts RULE_*): the cells of its slot in the region the supervisor
   * reads, or private memory in tests. The data path adds to them by index.
   */
  readonly counters: Float64Array;
  /**
   * The RTP stream health of the input, for a rule with the rtp option (its counters in the
   * rule's RULE_RTP cells); null: not counted.
   */
  readonly rtp: RtpHealth | null;

  constructor(
    rule: WorkerRule,
    outputs: readonly OutputPath[],
    counters: Float64Array = new Float64Array(RULE_CELLS),
    rtp: RtpHealth | null = null,
  ) {
    this.id = rule.id;
    this.counters = counters;
    this.inputInterface = rule.inputInterface;
    this.vlan = rule.inputVlan;
    this.source = rule.inputSource | 0;
    this.group = rule.inputGroup;
    this.groupKey = groupKey(rule.inputGroup);
    this.port = rule.inputPort;
    this.key = forwardingKey(rule.inputVlan, rule.inputGroup, rule.inputPort, rule.inputSource);
    this.outputs = outputs;
    // A stream whose rule changes outputs goes on with its sequence state; its counts are cells.
    this.rtp = rule.rtp !== true ? null : (rtp ?? new RtpHealth(new RtpCounterSet(rtpCells(counters))));
    this.refreshLive();
  }

  /** The same rule with other outputs (a reload changed them); its own counters carry on. */
  withOutputs(rule: WorkerRule, outputs: readonly OutputPath[]): ForwardingRule {
    return new ForwardingRule(rule, outputs, this.counters, this.rtp);
  }

  get packetsIn(): number {
    return this.counters[RULE_PACKETS_IN]!;
  }

  get bytesIn(): number {
    return this.counters[RULE_BYTES_IN]!;
  }

  /** When the last matched frame was taken, ms since the epoch (0: none yet). */
  get lastPacketAt(): number {
    return this.counters[RULE_LAST_PACKET_AT]!;
  }

  refreshLive(): void {
    this.live = this.outputs.filter((o) => o.attached);
  }

  /** What the ruleset hash covers, from what the worker holds now (attachments included). */
  fingerprint(): RuleFingerprint {
    return {
      id: this.id,
      inputInterface: this.inputInterface,
      inputVlan: this.vlan,
      inputSource: this.source >>> 0,
      inputGroup: this.group,
      inputPort: this.port,
      rtp: this.rtp !== null,
      outputs: this.outputs.map((o) => ({ label: o.label, attached: o.attached })),
    };
  }

  /** What the rule has counted (the supervisor's decoding of the same cells). */
  snapshot(): RuleCounters {
    return ruleCountersAt(
      this.counters,
      0,
      this.outputs.map((o) => o.snapshot()),
      this.rtp !== null,
    );
  }

  close(): void {
    for (const output of this.outputs) output.close();
  }
}

/** The RTP cells of a rule's cells (a view: counts land in the rule's slot). */
function rtpCells(counters: Float64Array): Float64Array {
  return counters.length >= RULE_RTP + RTP_CELLS
    ? counters.subarray(RULE_RTP, RULE_RTP + RTP_CELLS)
    : new Float64Array(RTP_CELLS);
}

/** "100/4009820417/5000/0": a rule's flow, for maps that are not on the per-packet path. */
export function forwardingKey(vlan: number, group: number, port: number, source = 0): string {
  return `${vlan}/${group >>> 0}/${port}/${source >>> 0}`;
}

/**
 * The hot-path lookup key of a group. A full group * 65536 + port key is above 2^31, which V8
 * boxes as a heap number whenever it is passed to Map.get: one allocation per lookup.
 */
export function groupKey(group: number): number {
  return group | 0;
}
