import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import { describeInput, describeOutput, type Rule } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import type { Links } from './links.js';
import type { ReloadPlan, RuleOrigin, RunningRule } from './reload-plan.js';
import type { RuleActivation } from './rule-activation.js';
import { RuleStore, type StoredRule } from './rule-store.js';
import { writeRuntimeRules } from './state-file.js';

/** What applying a reload plan did, for the operator. */
export interface ApplyReport {
  added: string[];
  removed: string[];
  /** Rules whose outputs or name changed. */
  updated: string[];
  unchanged: number;
}

export interface RuleTableOptions {
  activation: RuleActivation;
  links: Links;
  log: Logger;
  /** Where runtime rules are kept across restarts; undefined: they are not. */
  stateDirectory: string | undefined;
}

/**
 * The rule table: which rules exist, where each came from, and keeping activation (sockets and
 * workers) and the state directory in step with it. Every change goes through here.
 */
export class RuleTable {
  private readonly store = new RuleStore();
  private readonly activation: RuleActivation;
  private readonly links: Links;
  private readonly log: Logger;
  private readonly stateDirectory: string | undefined;
  /** While set (batch), changes are not written one by one: the batch writes once at its end. */
  private batching = false;

  constructor(options: RuleTableOptions) {
    this.activation = options.activation;
    this.links = options.links;
    this.log = options.log;
    this.stateDirectory = options.stateDirectory;
  }

  list(): StoredRule[] {
    return this.store.list();
  }

  find(selector: { id?: string | undefined; name?: string | undefined }): StoredRule {
    return this.store.find(selector);
  }

  running(): RunningRule[] {
    return this.store.list().map(({ rule, origin }) => ({ rule, origin }));
  }

  /**
   * Adds a rule. From an operator (`strict`): a unicast input must be one of the host's addresses
   * now, and a socket that cannot be made refuses the rule. From a file: the rule waits instead,
   * and says for what.
   */
  add(rule: Rule, origin: RuleOrigin, strict: boolean): StoredRule {
    this.store.checkAddable(rule);
    if (strict && rule.unicastInput && !this.links.hostAddresses().includes(rule.inputGroup)) {
      const address = ipv4ToString(rule.inputGroup);
      throw new RuleError(
        'E_NOT_LOCAL_ADDRESS',
        'input-group',
        address,
        `input-group ${address} is not an address of this host: a unicast input relays traffic sent to this host, so use one of its addresses (ip -4 addr)`,
      );
    }
    this.activation.add(rule, strict);
    const stored = this.store.add(rule, origin);
    this.log.info(
      {
        rule: rule.id,
        name: rule.name,
        origin,
        input: describeInput(rule),
        outputs: rule.outputs.map(describeOutput),
      },
      'rule added',
    );
    if (origin === 'runtime') this.persist();
    return stored;
  }

  remove(selector: { id?: string; name?: string }): StoredRule {
    const stored = this.store.find(selector);
    this.activation.remove(stored.rule.id);
    this.store.remove(stored.rule.id);
    this.log.info({ rule: stored.rule.id, name: stored.rule.name, origin: stored.origin }, 'rule removed');
    if (stored.origin === 'runtime') this.persist();
    return stored;
  }

  /** Runs several changes and writes the runtime rules once, after them all (a start, a reload). */
  batch<T>(changes: () => T): T {
    if (this.batching) return changes();
    this.batching = true;
    try {
      return changes();
    } finally {
      this.batching = false;
      this.persist();
    }
  }

  /** Every rule becomes a config rule (they were just saved into the config file). */
  adopt(): void {
    for (const stored of this.store.list()) this.store.replace(stored.rule, 'config');
    this.persist();
  }

  /**
   * Applies the difference a config file makes: rules that go are removed first (freeing inputs
   * and names), then rules that change are updated in place, then new rules are added. Rules the
   * file gives are config rules from here on.
   */
  apply(plan: ReloadPlan): ApplyReport {
    return this.batch(() => this.applyNow(plan));
  }

  private applyNow(plan: ReloadPlan): ApplyReport {
    for (const rule of plan.remove) this.remove({ id: rule.id });
    for (const update of plan.update) {
      if (!update.renameOnly) this.activation.update(update.rule, update.previous);
      this.store.replace(update.rule, 'config');
      this.log.info(
        {
          rule: update.rule.id,
          name: update.rule.name,
          outputs: update.rule.outputs.map(describeOutput),
          kept: update.previous.filter((i) => i >= 0).length,
          removed: update.removedOutputs,
          rtp: update.rule.rtp,
        },
        update.renameOnly ? 'rule renamed' : 'rule outputs or options changed',
      );
    }
    for (const id of plan.unchanged) this.store.replace(this.store.find({ id }).rule, 'config');
    for (const rule of plan.add) this.add(rule, 'config', false);
    return {
      added: plan.add.map((r) => r.id),
      removed: plan.remove.map((r) => r.id),
      updated: plan.update.map((u) => u.rule.id),
      unchanged: plan.unchanged.length,
    };
  }

  /**
   * Keeps the runtime rules in the state directory. A failure is logged and thrown after the
   * change it follows is made: the rule table is right, only its copy on disk is behind.
   */
  private persist(): void {
    if (this.stateDirectory === undefined || this.batching) return;
    const runtime = this.store
      .list()
      .filter((s) => s.origin === 'runtime')
      .map((s) => s.rule);
    try {
      writeRuntimeRules(this.stateDirectory, runtime);
    } catch (err) {
      this.log.error({ err, directory: this.stateDirectory }, 'runtime rules could not be saved');
      throw new RuleError(
        'E_STATE_WRITE',
        'state-directory',
        this.stateDirectory,
        `the change is made, but the runtime rules could not be saved in ${this.stateDirectory} (${(err as Error).message}): they will not survive a restart until this is fixed`,
      );
    }
  }
}
