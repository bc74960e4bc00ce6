import type { ForwardingRule } from './forwarding-rule.js';

/**
 * The rules of one input interface, indexed for the per-frame lookup by (VLAN, group, port,
 * source): by group first (a group rarely has more than one rule), then a scan of its few rules.
 * A rule for this frame's sender wins over one for any sender (source 0).
 */
export class InputRules {
  private readonly byKey = new Map<string, ForwardingRule>();
  private readonly byGroup = new Map<number, ForwardingRule[]>();
  /** VLAN ids some rule of this input names: a tagged frame of any other VLAN is other_vlan. */
  private readonly vlans = new Set<number>();
  /** Outputs of all rules together: the most that can have copies queued in one batch. */
  outputCount = 0;

  add(rule: ForwardingRule): void {
    this.byKey.set(rule.key, rule);
    this.reindex();
  }

  remove(rule: ForwardingRule): void {
    if (this.byKey.get(rule.key) === rule) this.byKey.delete(rule.key);
    this.reindex();
  }

  get size(): number {
    return this.byKey.size;
  }

  /**
   * The rule for a VLAN (0: untagged), group key and source (signed 32-bit) and port, or
   * undefined.
   */
  find(vlan: number, group: number, port: number, source: number): ForwardingRule | undefined {
    const list = this.byGroup.get(group);
    if (list === undefined) return undefined;
    let anySource: ForwardingRule | undefined;
    for (let i = 0; i < list.length; i++) {
      const rule = list[i]!;
      if (rule.port !== port || rule.vlan !== vlan) continue;
      if (rule.source === source) return rule;
      if (rule.source === 0) anySource = rule;
    }
    return anySource;
  }

  /** Whether some rule of this input names this VLAN. */
  namesVlan(vlan: number): boolean {
    return this.vlans.has(vlan);
  }

  private reindex(): void {
    this.byGroup.clear();
    this.vlans.clear();
    this.outputCount = 0;
    for (const rule of this.byKey.values()) {
      const list = this.byGroup.get(rule.groupKey);
      if (list) list.push(rule);
      else this.byGroup.set(rule.groupKey, [rule]);
      if (rule.vlan !== 0) this.vlans.add(rule.vlan);
      this.outputCount += rule.outputs.length;
    }
  }
}
