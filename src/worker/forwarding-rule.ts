import type { RuleCounters } from '../protocol/control-api.js';
import type { WorkerRule } from '../protocol/worker-messages.js';
import type { OutputPath } from './output-path.js';

/** A rule compiled for the hot path: its counters and the outputs each matching packet is copied to. */
export class ForwardingRule {
  readonly id: string;
  /** What the supervisor sent, kept for the ruleset hash. */
  readonly descriptor: WorkerRule;
  readonly inputInterface: string;
  /** group * 65536 + port: identifies the rule's flow on its input. */
  readonly key: number;
  /** The group as a signed 32-bit number: a small integer to V8, so looking it up allocates nothing. */
  readonly groupKey: number;
  readonly port: number;
  readonly outputs: OutputPath[];
  packetsIn = 0;
  bytesIn = 0;

  constructor(rule: WorkerRule, outputs: OutputPath[]) {
    this.id = rule.id;
    this.descriptor = rule;
    this.inputInterface = rule.inputInterface;
    this.key = forwardingKey(rule.inputGroup, rule.inputPort);
    this.groupKey = groupKey(rule.inputGroup);
    this.port = rule.inputPort;
    this.outputs = outputs;
  }

  snapshot(): RuleCounters {
    return {
      packetsIn: this.packetsIn,
      bytesIn: this.bytesIn,
      outputs: this.outputs.map((o) => o.snapshot()),
    };
  }

  close(): void {
    for (const output of this.outputs) output.close();
  }
}

export function forwardingKey(group: number, port: number): number {
  return group * 65536 + port;
}

/**
 * The hot-path lookup key of a group. A full group * 65536 + port key is above 2^31, which V8
 * boxes as a heap number whenever it is passed to Map.get: one allocation per lookup.
 */
export function groupKey(group: number): number {
  return group | 0;
}
