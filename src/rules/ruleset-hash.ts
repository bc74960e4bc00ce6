import { createHash } from 'node:crypto';

/** What identifies a rule's behaviour in a worker: its input key and its outputs. */
export interface RuleFingerprint {
  id: string;
  inputInterface: string;
  inputVlan: number;
  inputSource: number;
  inputGroup: number;
  inputPort: number;
  /** Whether the worker counts the rule's RTP stream health; absent: no. */
  rtp?: boolean;
  /** Each output as written (with its options) and whether it has sockets in the worker. */
  outputs: readonly { label: string; attached: boolean }[];
}

/**
 * A short hash of a set of rules, independent of the order they were added in. Supervisor and
 * worker compute it over what each believes the worker holds; a difference means drift.
 */
export function rulesetHash(rules: Iterable<RuleFingerprint>): string {
  const lines = [...rules]
    .map((r) => {
      const outputs = r.outputs.map((o) => `${o.label}${o.attached ? '' : ' (detached)'}`).join(',');
      const rtp = r.rtp === true ? '|rtp' : '';
      return `${r.id}|${r.inputInterface}|${r.inputVlan}|${r.inputSource}|${r.inputGroup}|${r.inputPort}|${outputs}${rtp}`;
    })
    .sort();
  return createHash('sha256').update(lines.join('\n')).digest('hex').slice(0, 16);
}
