import { ipv4ToString } from '../packet/ipv4-address.js';
import { describeInput, type Rule } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';

export interface StoredRule {
  rule: Rule;
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

  add(rule: Rule): StoredRule {
    this.checkAddable(rule);
    const stored = { rule, createdAt: new Date() };
    this.byId.set(rule.id, stored);
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

  list(): StoredRule[] {
    return [...this.byId.values()].sort(
      (a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.rule.id.localeCompare(b.rule.id),
    );
  }

  get size(): number {
    return this.byId.size;
  }

  private findByName(name: string): StoredRule | undefined {
    for (const stored of this.byId.values()) if (stored.rule.name === name) return stored;
    return undefined;
  }
}
