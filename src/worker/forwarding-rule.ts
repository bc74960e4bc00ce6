import type { RuleCounters } from '../protocol/control-api.js';
import type { WorkerRule } from '../protocol/worker-messages.js';
import type { OutputPath } from './output-path.js';

/** A rule compiled for the hot path: its counters and the outputs each matching packet is copied to. */
export class ForwardingRule {
  readonly id: string;
  /** What the supervisor sent, kept for the ruleset hash. */
  readonly descriptor: WorkerRule;
  readonly inputInterface: string;
  /** group * 65536 + port: one number, so a lookup is a single Map.get. */
  readonly key: number;
  readonly outputs: OutputPath[];
  packetsIn = 0;
  bytesIn = 0;

  constructor(rule: WorkerRule, outputs: OutputPath[]) {
    this.id = rule.id;
    this.descriptor = rule;
    this.inputInterface = rule.inputInterface;
    this.key = forwardingKey(rule.inputGroup, rule.inputPort);
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
