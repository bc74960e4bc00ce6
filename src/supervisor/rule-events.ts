import { join } from 'node:path';
import type { EventCause, EventClient, EventRule, ReloadResult, RuleView } from '../protocol/control-api.js';
import { describeInput, describeOutput } from '../rules/rule.js';
import type { EventBus } from './event-bus.js';
import type { RuleActivationView } from './rule-state.js';
import type { StoredRule } from './rule-store.js';
import { STATE_FILE } from './state-file.js';

export interface RuleEventsOptions {
  bus: EventBus;
  /** Every rule now, and how it stands. */
  rules: () => StoredRule[];
  view: (id: string) => RuleActivationView;
}

/** What the rule table tells of its changes (RuleTable calls these; tests may pass none). */
export interface RuleChangeEvents {
  ruleAdded(stored: StoredRule): void;
  ruleRemoved(stored: StoredRule): void;
  ruleUpdated(stored: StoredRule, renameOnly: boolean): void;
  configApplied(result: ReloadResult): void;
}

/** The cause of the rules loaded at start: the config file's and the state directory's. */
const AT_START: EventCause = {
  by: 'config-start',
  source: null,
  client: null,
  signal: null,
  interface: null,
};

/**
 * Rule changes as events, each with its cause: whoever runs a change does it inside
 * `because(cause, …)`, and every rule.* event published meanwhile carries that cause. After the
 * outermost change, the state of each rule it may have moved (every rule after a link change,
 * else the rules it added or updated: a rule's state depends on the links and on itself alone)
 * is compared with the last one published, and each that moved (active, degraded, down,
 * waiting, or only its reason) gets a rule.state event. So adding rule after rule stays linear.
 */
export class RuleEvents implements RuleChangeEvents {
  private readonly bus: EventBus;
  private readonly rules: () => StoredRule[];
  private readonly view: (id: string) => RuleActivationView;
  private cause: EventCause | null = null;
  /** Rules the change under way added or updated. */
  private readonly touched = new Set<string>();
  /** The state and reason last published per rule. */
  private readonly known = new Map<string, { state: RuleView['state']; reason: string | null }>();
  private startFiles: { config: string | null; state: string | null } = { config: null, state: null };

  constructor(options: RuleEventsOptions) {
    this.bus = options.bus;
    this.rules = options.rules;
    this.view = options.view;
  }

  /** Runs a change made for `cause`; then publishes the rule states it moved. */
  because<T>(cause: EventCause, change: () => T): T {
    if (this.cause !== null) return change();
    this.cause = cause;
    try {
      return change();
    } finally {
      try {
        this.publishStates(cause.by === 'link-change' ? undefined : this.touched);
      } finally {
        this.cause = null;
        this.touched.clear();
      }
    }
  }

  /** The rules mcrd starts with: config rules from `configPath`, runtime rules from the state directory. */
  atStart<T>(configPath: string | undefined, stateDirectory: string | undefined, load: () => T): T {
    this.startFiles = {
      config: configPath ?? null,
      state: stateDirectory === undefined ? null : join(stateDirectory, STATE_FILE),
    };
    return this.because(AT_START, load);
  }

  ruleAdded(stored: StoredRule): void {
    this.touched.add(stored.rule.id);
    const view = this.view(stored.rule.id);
    this.known.set(stored.rule.id, { state: view.state, reason: view.reason });
    const rule = eventRule(stored, view, null);
    const cause = this.causeFor(stored);
    const count = rule.outputs.length;
    this.bus.publish({
      type: 'rule.added',
      cause,
      rule,
      message: `${label(rule)} by ${describeCause(cause)}: ${rule.input} -> ${count} output${count === 1 ? '' : 's'}, ${stateText(rule)}`,
    });
  }

  ruleRemoved(stored: StoredRule): void {
    const last = this.known.get(stored.rule.id) ?? { state: 'waiting', reason: null };
    this.known.delete(stored.rule.id);
    const rule = eventRule(stored, last, null);
    const cause = this.causeFor(stored);
    this.bus.publish({
      type: 'rule.removed',
      cause,
      rule,
      message: `${label(rule)} by ${describeCause(cause)}: ${rule.input}`,
    });
  }

  ruleUpdated(stored: StoredRule, renameOnly: boolean): void {
    this.touched.add(stored.rule.id);
    const rule = eventRule(stored, this.view(stored.rule.id), null);
    const cause = this.causeFor(stored);
    const what = renameOnly
      ? 'renamed'
      : `outputs or options changed, now ${rule.outputs.join(', ')}${rule.rtp ? ' (rtp)' : ''}`;
    this.bus.publish({
      type: 'rule.updated',
      cause,
      rule,
      message: `${label(rule)} by ${describeCause(cause)}: ${what}`,
    });
  }

  configApplied(result: ReloadResult): void {
    const cause = this.cause;
    const { added, removed, updated, unchanged, needsRestart } = result;
    this.bus.publish({
      type: 'config.applied',
      cause,
      config: { added, removed, updated, unchanged, needsRestart },
      message: `config applied by ${describeCause(cause)}: ${added.length} added, ${removed.length} removed, ${updated.length} updated, ${unchanged} unchanged${needsRestart.length > 0 ? `; needs a restart of mcrd: ${needsRestart.join(', ')}` : ''}`,
    });
  }

  /** The ids of every rule now. */
  ids(): string[] {
    return this.rules().map((stored) => stored.rule.id);
  }

  /** A rule as events describe it, now; undefined once it is gone. */
  describe(id: string): EventRule | undefined {
    const stored = this.rules().find((s) => s.rule.id === id);
    return stored && eventRule(stored, this.view(id), null);
  }

  /**
   * Publishes rule.state for each of the rules `ids` (all when undefined) whose state or reason
   * moved since it was last published.
   */
  publishStates(ids: Iterable<string> = this.ids()): void {
    for (const id of ids) {
      const last = this.known.get(id);
      if (last === undefined) continue;
      const view = this.view(id);
      if (last.state === view.state && last.reason === view.reason) continue;
      const stored = this.rules().find((s) => s.rule.id === id);
      if (!stored) continue;
      this.known.set(id, { state: view.state, reason: view.reason });
      const rule = eventRule(stored, view, last.state);
      const cause = this.cause ?? null;
      this.bus.publish({
        type: 'rule.state',
        cause,
        rule,
        message: `${label(rule)} ${last.state === view.state ? 'still' : `${last.state} ->`} ${stateText(rule)}${cause ? ` after ${describeCause(cause)}` : ''}`,
      });
    }
  }

  /** At start, a runtime rule came from the state file, a config rule from the config file. */
  private causeFor(stored: StoredRule): EventCause | null {
    if (this.cause !== AT_START) return this.cause;
    return stored.origin === 'runtime'
      ? { ...AT_START, by: 'state-file', source: this.startFiles.state }
      : { ...AT_START, source: this.startFiles.config };
  }
}

/** The cause of a request from control client `client`. */
export function clientCause(
  by: 'control-client' | 'config-reload' | 'config-load',
  client: EventClient,
  source: string | null = null,
): EventCause {
  return { by, source, client, signal: null, interface: null };
}

/** A reload by signal (SIGHUP) of the file at `source`. */
export function signalCause(signal: string, source: string | null): EventCause {
  return { by: 'config-reload', source, client: null, signal, interface: null };
}

/** A change of interface `name` (rule.state events it causes). */
export function linkCause(name: string): EventCause {
  return { by: 'link-change', source: null, client: null, signal: null, interface: name };
}

/** The cause in words, as mcrctl events and the log show it. */
export function describeCause(cause: EventCause | null): string {
  if (cause === null) return 'mcrd';
  const client = cause.client ? describeClient(cause.client) : null;
  switch (cause.by) {
    case 'control-client':
      return client ?? 'a control client';
    case 'config-reload':
      return `config reload of ${cause.source ?? 'the config file'}${cause.signal ? ` (${cause.signal})` : client ? ` by ${client}` : ''}`;
    case 'config-load':
      return `config load of ${cause.source ?? 'a document'}${client ? ` by ${client}` : ''}`;
    case 'config-start':
      return `config file ${cause.source ?? ''} at start`;
    case 'state-file':
      return `state file ${cause.source ?? ''} at start`;
    case 'link-change':
      return `a change of ${cause.interface ?? 'an interface'}`;
  }
}

function describeClient(client: EventClient): string {
  if (client.pid === null) return `control client ${client.id}`;
  return `control client pid ${client.pid} uid ${client.uid}`;
}

function eventRule(
  stored: StoredRule,
  view: Pick<RuleActivationView, 'state' | 'reason'>,
  previousState: RuleView['state'] | null,
): EventRule {
  const { rule } = stored;
  return {
    id: rule.id,
    name: rule.name ?? null,
    input: describeInput(rule),
    outputs: rule.outputs.map((o) => `${describeOutput(o)}`),
    origin: stored.origin,
    rtp: rule.rtp,
    state: view.state,
    reason: view.reason,
    previousState,
  };
}

export function label(rule: { id: string; name: string | null }): string {
  return rule.name ? `${rule.id} (${rule.name})` : rule.id;
}

function stateText(rule: EventRule): string {
  return rule.reason ? `${rule.state} (${rule.reason})` : rule.state;
}
