import { ipv4ToString } from '../packet/ipv4-address.js';
import { describeInput, type Rule } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import type { RuleOrigin } from './reload-plan.js';

export interface StoredRule {
  rule: Rule;
  /** The config file, or a control client (mcrctl add): runtime rules persist in the state directory. */
  origin: RuleOrigin;
  createdAt: Date;
}

/** The authoritative rule table: one rule per input tuple, names unique. */
export class RuleStore {
  private readonly byId = new Map<string, StoredRule>();

  /** Throws if the rule's input or name is already taken, naming the rule that holds it. */
  checkAddable(rule: Rule): void {
    const existing = this.byId.get(rule.id);
    if (existing) {
      const label = existing.rule.name ? `${existing.rule.id} (${existing.rule.name})` : existing.rule.id;
      throw new RuleError(
        'E_RULE_EXISTS',
        'input',
        `${rule.inputInterface} ${ipv4ToString(rule.inputGroup)}:${rule.inputPort}`,
        `input ${describeInput(existing.rule)} is already relayed by rule ${label}; remove that rule first or add outputs to it`,
      );
    }
    if (rule.name !== undefined) {
      const holder = this.findByName(rule.name);
      if (holder) {
        throw new RuleError(
          'E_NAME_TAKEN',
          'name',
          rule.name,
          `name ${rule.name} is already used by rule ${holder.rule.id}`,
        );
      }
    }
  }

  add(rule: Rule, origin: RuleOrigin = 'runtime'): StoredRule {
    this.checkAddable(rule);
    const stored = { rule, origin, createdAt: new Date() };
    this.byId.set(rule.id, stored);
    return stored;
  }

  /** The same rule (same id) changed: new outputs or name, or another origin; createdAt stays. */
  replace(rule: Rule, origin: RuleOrigin): StoredRule {
    const stored = this.byId.get(rule.id);
    if (!stored) throw new Error(`rule ${rule.id} is not in the store`);
    stored.rule = rule;
    stored.origin = origin;
    return stored;
  }

  /** Finds a rule by id or name; throws E_RULE_NOT_FOUND naming what was asked for. */
  find(selector: { id?: string | undefined; name?: string | undefined }): StoredRule {
    const found =
      selector.id !== undefined ? this.byId.get(selector.id) : this.findByName(selector.name ?? '');
    if (!found) {
      const field = selector.id !== undefined ? 'id' : 'name';
      const value = selector.id ?? selector.name;
      throw new RuleError(
        'E_RULE_NOT_FOUND',
        field,
        value,
        `no rule with ${field} ${String(value)} (see mcrctl list)`,
      );
    }
    return found;
  }

  remove(id: string): void {
    this.byId.delete(id);
  }

  /** In the order the rules were added: a config file's order, then the runtime rules' order. */
  list(): StoredRule[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  private findByName(name: string): StoredRule | undefined {
    for (const stored of this.byId.values()) if (stored.rule.name === name) return stored;
    return undefined;
  }
}
