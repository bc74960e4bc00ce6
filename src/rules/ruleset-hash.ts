import { createHash } from 'node:crypto';

/** What identifies a rule's behaviour in a worker: its input key and its outputs. */
export interface RuleFingerprint {
  id: string;
  inputInterface: string;
  inputGroup: number;
  inputPort: number;
  outputs: readonly string[];
}

/**
 * A short hash of a set of rules, independent of the order they were added in. Supervisor and
 * worker compute it over what each believes the worker holds; a difference means drift.
 */
export function rulesetHash(rules: Iterable<RuleFingerprint>): string {
  const lines = [...rules]
    .map((r) => `${r.id}|${r.inputInterface}|${r.inputGroup}|${r.inputPort}|${r.outputs.join(',')}`)
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}
