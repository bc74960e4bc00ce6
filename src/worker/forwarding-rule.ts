import type { RuleCounters } from '../protocol/control-api.js';
import type { WorkerRule } from '../protocol/worker-messages.js';
import type { RuleFingerprint } from '../rules/ruleset-hash.js';
import type { OutputPath } from './output-path.js';
import { RtpHealth } from './rtp-health.js';

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
  packetsIn = 0;
  bytesIn = 0;
  /** When the last matched frame was taken (ms since the epoch, to the wakeup); 0: none yet. */
  lastPacketAt = 0;
  /** Matched frames not relayed at all, by reason (RuleCounters.drops). */
  ownSource = 0;
  ttlExpired = 0;
  noOutput = 0;
  /** Forwarded frames whose every copy the kernel refused. */
  egressFailed = 0;
  /** The RTP stream health of the input, for a rule with the rtp option; null: not counted. */
  rtp: RtpHealth | null;

  constructor(rule: WorkerRule, outputs: readonly OutputPath[]) {
    this.id = rule.id;
    this.inputInterface = rule.inputInterface;
    this.vlan = rule.inputVlan;
    this.source = rule.inputSource | 0;
    this.group = rule.inputGroup;
    this.groupKey = groupKey(rule.inputGroup);
    this.port = rule.inputPort;
    this.key = forwardingKey(rule.inputVlan, rule.inputGroup, rule.inputPort, rule.inputSource);
    this.outputs = outputs;
    this.rtp = rule.rtp === true ? new RtpHealth() : null;
    this.refreshLive();
  }

  /** The same rule with other outputs (a reload changed them); its own counters carry on. */
  withOutputs(rule: WorkerRule, outputs: readonly OutputPath[]): ForwardingRule {
    const next = new ForwardingRule(rule, outputs);
    next.packetsIn = this.packetsIn;
    next.bytesIn = this.bytesIn;
    next.lastPacketAt = this.lastPacketAt;
    next.ownSource = this.ownSource;
    next.ttlExpired = this.ttlExpired;
    next.noOutput = this.noOutput;
    next.egressFailed = this.egressFailed;
    // The stream goes on: its sequence state and counters too, while the option stays on.
    if (rule.rtp === true && this.rtp !== null) next.rtp = this.rtp;
    return next;
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

  snapshot(): RuleCounters {
    const drops: Record<string, number> = {};
    if (this.ownSource > 0) drops.own_source = this.ownSource;
    if (this.ttlExpired > 0) drops.ttl_expired = this.ttlExpired;
    if (this.noOutput > 0) drops.no_output = this.noOutput;
    if (this.egressFailed > 0) drops.egress_failed = this.egressFailed;
    return {
      packetsIn: this.packetsIn,
      bytesIn: this.bytesIn,
      drops,
      outputs: this.outputs.map((o) => o.snapshot()),
      lastPacketAt: this.lastPacketAt === 0 ? null : new Date(this.lastPacketAt).toISOString(),
      rtp: this.rtp === null ? null : this.rtp.counters.snapshot(),
    };
  }

  close(): void {
    for (const output of this.outputs) output.close();
  }
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
