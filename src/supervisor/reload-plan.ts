import { describeOutput, type Rule } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';

/** Where a running rule came from: the config file, or a control client (mcrctl add). */
export type RuleOrigin = 'config' | 'runtime';

export interface RunningRule {
  rule: Rule;
  origin: RuleOrigin;
}

/** A rule whose input stays and whose outputs, rtp option or name change. */
export interface RuleUpdate {
  rule: Rule;
  /**
   * For each output of the new rule, the index of the same output in the running rule (it keeps
   * its sockets and counters), or -1 for an output that is new.
   */
  previous: number[];
  /** Outputs of the running rule that go. */
  removedOutputs: number;
  /** Only the name (or origin) changes: the workers have nothing to do (an rtp change is theirs). */
  renameOnly: boolean;
}

/** What applying a config changes: only the difference from what runs. */
export interface ReloadPlan {
  add: Rule[];
  remove: Rule[];
  update: RuleUpdate[];
  /** Ids of rules that stay exactly as they are (and become, or stay, config rules). */
  unchanged: string[];
}

/**
 * The difference between the rules that run and those a config file gives. Rules are matched by
 * id (their input); outputs by what they are (group, port, interface and options, as written):
 * an output whose options changed is a new output and the old one goes. Config rules missing from
 * the file go; runtime rules stay unless `replace`. A rule the file gives that runs as a runtime
 * rule becomes a config rule. Throws E_NAME_TAKEN when a runtime rule that stays holds a name the
 * file gives another rule: nothing is applied then.
 */
export function planReload(
  running: readonly RunningRule[],
  desired: readonly Rule[],
  replace: boolean,
): ReloadPlan {
  const byId = new Map(running.map((r) => [r.rule.id, r]));
  const wanted = new Set(desired.map((r) => r.id));
  const plan: ReloadPlan = { add: [], remove: [], update: [], unchanged: [] };
  for (const r of running) {
    if (!wanted.has(r.rule.id) && (r.origin === 'config' || replace)) plan.remove.push(r.rule);
  }
  const staying = running.filter((r) => !wanted.has(r.rule.id) && r.origin === 'runtime' && !replace);
  for (const rule of desired) {
    const holder = staying.find((r) => rule.name !== undefined && r.rule.name === rule.name);
    if (holder) {
      throw new RuleError(
        'E_NAME_TAKEN',
        'name',
        rule.name,
        `name ${rule.name} is given in the config to ${rule.id} but a runtime rule, ${holder.rule.id}, has it; remove or rename that rule, or load with --replace`,
      );
    }
    const current = byId.get(rule.id);
    if (!current) {
      plan.add.push(rule);
      continue;
    }
    const update = outputChanges(current.rule, rule);
    if (update === undefined) plan.unchanged.push(rule.id);
    else plan.update.push(update);
  }
  return plan;
}

/** How `next` differs from `current` (same id), or undefined when it does not. */
function outputChanges(current: Rule, next: Rule): RuleUpdate | undefined {
  const keys = current.outputs.map(describeOutput);
  const previous = next.outputs.map((o) => keys.indexOf(describeOutput(o)));
  const kept = previous.filter((i) => i >= 0).length;
  const sameOutputs =
    kept === current.outputs.length && next.outputs.length === kept && previous.every((p, i) => p === i);
  const sameRtp = current.rtp === next.rtp;
  if (sameOutputs && sameRtp && current.name === next.name) return undefined;
  return {
    rule: next,
    previous,
    removedOutputs: current.outputs.length - kept,
    renameOnly: sameOutputs && sameRtp,
  };
}
