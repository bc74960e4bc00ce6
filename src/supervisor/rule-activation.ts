import type { Logger } from 'pino';
import type { RuleCounters } from '../protocol/control-api.js';
import type { CounterSlot } from '../protocol/counter-layout.js';
import { ControlError } from '../protocol/json-rpc.js';
import type { RuleCounterSlots, SupervisorMessage } from '../protocol/worker-messages.js';
import { describeOutput, type Output, type Rule } from '../rules/rule.js';
import { forcesXdp as forcesXdpRule } from '../rules/xdp-eligibility.js';
import { rulesetHash } from '../rules/ruleset-hash.js';
import { inputProblem, outputProblem, type LinkState, type Links } from './links.js';
import {
  ruleStateView,
  slotsOf,
  workerRule,
  type OutputState,
  type RuleActivationView,
  type RuleState,
} from './rule-state.js';
import type { OutputSockets } from './output-sockets.js';
import type { InputSocketSet, SocketOpener } from './system-sockets.js';
import { WorkerInputs } from './worker-inputs.js';
import type { XdpPaths, XdpRuleOutput } from './xdp-activation.js';
import { refusal, type PathChoice } from './xdp-path-choice.js';

/** The worker processes, as activation talks to them. */
export interface WorkerLink {
  ids(): number[];
  send(id: number, message: SupervisorMessage, fds?: readonly number[]): void;
}

/** Where rules and outputs count (CounterStore): slots given out and taken back. */
export interface CounterSlots {
  allocateRule(outputs: number): RuleCounterSlots;
  allocateOutput(): CounterSlot;
  freeRule(slots: RuleCounterSlots): void;
  freeOutput(slot: CounterSlot): void;
}

export interface ActivationOptions {
  links: Links;
  counters: CounterSlots;
  sockets: SocketOpener;
  workers: WorkerLink;
  log: Logger;
  /** Bytes of RX ring per input and worker: decides the slot size an MTU needs. */
  ringBytes: number;
  /** The XDP path; without it every rule is on the worker path and xdp outputs are refused. */
  xdp?: XdpPaths | undefined;
}

export type LinkChange = 'appeared' | 'vanished' | 'link' | 'addresses' | 'mtu' | 'xdp-features';

/**
 * Turns rules into sockets and worker commands, and keeps them in step with the interfaces.
 *
 * A rule is active while its input is usable (the interface exists, came up at least once, and
 * for a unicast input the host has the address): its input sockets are taken and every worker
 * holds it. Each output of an active rule is attached (has sockets) while its link exists and
 * has an IPv4 address; outputs come and go on their own without disturbing the others. Every
 * change of any link re-evaluates every rule that uses it, as input or as output.
 *
 * Acquisition is all or nothing: a rule that is added while everything it needs is there is
 * refused, with nothing left open, if a socket cannot be made; later, the same failure leaves the
 * rule (or that output) waiting, with the reason shown.
 */
export class RuleActivation {
  private readonly links: Links;
  private readonly sockets: SocketOpener;
  private readonly workers: WorkerLink;
  private readonly log: Logger;
  private readonly inputs: WorkerInputs;
  private readonly counters: CounterSlots;
  private readonly xdp: XdpPaths | undefined;
  private readonly rules = new Map<string, RuleState>();
  /** The host's addresses as last sent to the workers (sorted, joined), to send only changes. */
  private sentAddresses = '';
  /** Hash of the rules the workers should hold; cleared whenever that changes. */
  private hash: string | undefined;

  constructor(options: ActivationOptions) {
    this.links = options.links;
    this.sockets = options.sockets;
    this.workers = options.workers;
    this.log = options.log;
    this.inputs = new WorkerInputs(
      options.sockets,
      options.workers,
      options.links,
      options.ringBytes,
      options.log,
    );
    this.counters = options.counters;
    this.xdp = options.xdp;
  }

  /**
   * Takes a new rule. It becomes active at once when its input is usable, else it waits. With
   * `refuse` (an operator's add), throws, leaving nothing behind, when its sockets cannot be made;
   * without (a config file's rule), the rule or that output waits instead, with the reason.
   */
  add(rule: Rule, refuse = true): void {
    const slots = this.counters.allocateRule(rule.outputs.length);
    const state: RuleState = {
      rule,
      counters: slots.rule,
      active: false,
      outputs: slots.outputs.map((counters) => ({ counters, sockets: null, failure: null })),
      failure: null,
      path: 'worker',
      pathReason: null,
    };
    try {
      if (refuse) this.activate(state, true);
      else this.activateLogged(state, 'added');
    } catch (err) {
      this.counters.freeRule(slots);
      throw err;
    }
    this.rules.set(rule.id, state);
  }

  /** Where each rule counts, for the counters shown. */
  counterSlots(id: string): RuleCounterSlots {
    const state = this.rules.get(id);
    if (!state) throw new Error(`rule ${id} is not known to activation`);
    return slotsOf(state);
  }

  /**
   * Gives a rule other outputs, its input the same (a config reload): outputs that stay keep
   * their sockets and go on forwarding, without a gap; new ones are opened where ready (one that
   * fails waits, with the reason); the others are closed once the workers have let them go.
   * `previous[i]`: the index output i had, or -1 when it is new. A new name alone changes nothing
   * here.
   */
  update(rule: Rule, previous: readonly number[]): void {
    const state = this.rules.get(rule.id);
    if (!state) throw new Error(`rule ${rule.id} is not known to activation`);
    const old = state.outputs;
    const kept = new Set(previous.filter((i) => i >= 0));
    state.rule = rule;
    state.outputs = rule.outputs.map((_, i) =>
      previous[i]! >= 0
        ? old[previous[i]!]!
        : { counters: this.counters.allocateOutput(), sockets: null, failure: null },
    );
    if (state.active && this.xdp && this.switchesPath(state)) {
      // Another path: the rule leaves the old one whole and enters the new one.
      this.deactivate(state);
      this.activateLogged(state, 'updated');
    } else if (state.active && state.path === 'xdp') {
      this.refreshXdp(state, () => true);
    } else if (state.active) {
      rule.outputs.forEach((output, i) => {
        if (previous[i]! >= 0 || outputProblem(this.links, output) !== null) return;
        const out = state.outputs[i]!;
        try {
          out.sockets = this.sockets.openOutput(rule, i, this.linkOf(output));
        } catch (err) {
          out.failure = `could not open its sockets: ${(err as Error).message}`;
          this.log.error(
            { err, rule: rule.id, output: describeOutput(output) },
            'output could not be opened',
          );
        }
      });
      const fresh = state.outputs.flatMap((o, i) => (previous[i]! < 0 && o.sockets ? [o.sockets] : []));
      const fds = [...fresh.map((s) => s.socketFd), ...fresh.flatMap((s) => (s.raw ? [s.raw.fd] : []))];
      const message: SupervisorMessage = {
        type: 'rule.update',
        rule: workerRule(state),
        previous: [...previous],
        counters: slotsOf(state),
      };
      for (const id of this.workers.ids()) this.workers.send(id, message, fds);
      this.hash = undefined;
    }
    old.forEach((out, i) => {
      if (kept.has(i)) return;
      this.closeOutputOf(out);
      this.counters.freeOutput(out.counters);
    });
  }

  /** Takes a rule out of the workers and releases its sockets. */
  remove(id: string): void {
    const state = this.rules.get(id);
    if (!state) return;
    this.deactivate(state);
    this.xdp?.forget(id);
    this.rules.delete(id);
    this.counters.freeRule(slotsOf(state));
  }

  /** Re-evaluates every rule after a change of link `name`. */
  linkChanged(name: string, change: LinkChange): void {
    if (change === 'appeared' || change === 'xdp-features') this.xdp?.linkChanged(name);
    if (change !== 'link' && change !== 'xdp-features') this.sendHostAddressesIfChanged();
    if (change === 'mtu') this.inputs.mtuChanged(name);
    for (const state of this.rules.values()) {
      if (!state.active) this.activateLogged(state, `${name} ${change}`);
      else this.reevaluateActive(state, name, change);
    }
  }

  /** Gives a (re)started worker everything it must hold: the host's addresses, inputs, active rules. */
  syncWorker(id: number): void {
    this.workers.send(id, { type: 'host.addresses', addresses: this.currentAddresses() });
    this.inputs.sync(id);
    this.sendRules(id);
  }

  /** Sends every active rule again (to a worker whose rules drifted, after rules.reset). */
  sendRules(id: number): void {
    for (const state of this.rules.values())
      if (state.active && state.path === 'worker') this.sendRule(id, state);
  }

  /** The hash of the rules every worker should hold now. */
  expectedHash(): string {
    this.hash ??= rulesetHash(
      [...this.rules.values()].filter((s) => s.active && s.path === 'worker').map((s) => workerRule(s)),
    );
    return this.hash;
  }

  activeCount(): number {
    let n = 0;
    for (const state of this.rules.values()) if (state.active) n++;
    return n;
  }

  /** How a rule stands: active, degraded (some outputs cannot send), down (its input link is), waiting. */
  view(id: string): RuleActivationView {
    const state = this.rules.get(id);
    if (!state) throw new Error(`rule ${id} is not known to activation`);
    return ruleStateView(state, this.links);
  }

  /** Releases every socket (mcrd is stopping; the workers are gone). */
  close(): void {
    for (const state of this.rules.values()) {
      for (const output of state.outputs) if (output.sockets) this.sockets.closeOutput(output.sockets);
      if (state.active) this.sockets.releaseInput(state.rule);
      state.active = false;
    }
    this.rules.clear();
    this.xdp?.close();
  }

  /** A rule's counters with what the XDP path counted for it added. */
  mergeXdp(id: string, worker: RuleCounters): RuleCounters {
    const state = this.rules.get(id);
    if (!state || !this.xdp) return worker;
    return this.xdp.merge(
      state.rule,
      worker,
      state.outputs.map((o) => String(o.counters.tag)),
    );
  }

  /**
   * Activates a waiting rule whose input is usable: takes its input, opens every output that is
   * ready, and hands the rule to the workers. With `refuse`, any socket error undoes everything
   * and is thrown; otherwise an input failure keeps the rule waiting and an output failure keeps
   * that output waiting, each with its reason.
   */
  private activate(state: RuleState, refuse: boolean): void {
    const { rule } = state;
    if (state.active || inputProblem(this.links, rule, false) !== null) return;
    if (!this.enterPath(state, refuse)) return;
    let created: InputSocketSet | undefined;
    try {
      created = this.sockets.acquireInput(rule, this.links.get(rule.inputInterface)!);
    } catch (err) {
      // An input attached for this rule alone is detached again.
      if (state.path === 'xdp') this.xdp!.remove(rule);
      throw err;
    }
    try {
      rule.outputs.forEach((output, i) => {
        const out = state.outputs[i]!;
        out.failure = null;
        if (outputProblem(this.links, output) !== null) return;
        try {
          out.sockets = this.sockets.openOutput(rule, i, this.linkOf(output), state.path);
        } catch (err) {
          if (refuse) throw err;
          out.failure = `could not open its sockets: ${(err as Error).message}`;
          this.log.error(
            { err, rule: rule.id, output: describeOutput(output) },
            'output could not be opened',
          );
        }
      });
      if (state.path === 'xdp') this.xdp!.set(rule, this.xdpOutputs(state));
    } catch (err) {
      for (const out of state.outputs) this.closeOutputOf(out);
      if (state.path === 'xdp') this.xdp!.remove(rule);
      // Nothing was sent to the workers yet, so a closed input needs no input.detach.
      this.sockets.releaseInput(rule);
      throw err;
    }
    state.active = true;
    state.failure = null;
    this.hash = undefined;
    for (const id of this.workers.ids()) {
      // The workers take the input of an XDP rule too: what the program passes on, they count.
      if (created) this.inputs.created(id, created);
      if (state.path === 'worker') this.sendRule(id, state);
    }
  }

  /**
   * Chooses the rule's path before it takes anything: XDP when choosePath says so and the input's
   * program is attached, else the worker path (auto, with the reason kept). False when a forced
   * rule cannot go to XDP and waits (with `refuse`, that is thrown: E_XDP_UNAVAILABLE).
   */
  private enterPath(state: RuleState, refuse: boolean): boolean {
    const { rule } = state;
    const forced = forcesXdpRule(rule);
    const choice: PathChoice = this.xdp
      ? this.xdp.enter(rule, this.links.get(rule.inputInterface)!, this.currentAddresses(), refuse)
      : { path: 'worker', forced, reason: forced ? 'this mcrd has no XDP path' : null };
    state.path = choice.path;
    state.pathReason = choice.reason;
    if (choice.path === 'xdp' || !choice.forced) return true;
    const message = refusal(rule, choice);
    if (refuse) throw new ControlError('E_XDP_UNAVAILABLE', message);
    state.failure = message;
    return false;
  }

  /** Whether the rule, active, would now take the other path (or, forced, none). */
  private switchesPath(state: RuleState): boolean {
    return this.xdp!.switches(state.rule, state.path);
  }

  /** The attached outputs of an XDP rule, as the maps take them. */
  private xdpOutputs(state: RuleState): XdpRuleOutput[] {
    return state.rule.outputs.flatMap((output, i) => {
      const out = state.outputs[i]!;
      return out.sockets ? [{ id: String(out.counters.tag), output, socketFd: out.sockets.socketFd }] : [];
    });
  }

  /**
   * Brings an XDP rule's outputs in step with their links (those `touched` selects): an output
   * whose link or address went loses its socket, one whose link is ready gets one; then the maps
   * get the rule's outputs anew (addresses and MACs read again) in one update.
   */
  private refreshXdp(state: RuleState, touched: (output: Output) => boolean): void {
    const { rule } = state;
    rule.outputs.forEach((output, i) => {
      if (!touched(output)) return;
      const out = state.outputs[i]!;
      const problem = outputProblem(this.links, output);
      if (out.sockets && problem?.detach) this.closeOutputOf(out);
      else if (!out.sockets && problem === null) {
        try {
          out.sockets = this.sockets.openOutput(rule, i, this.linkOf(output), 'xdp');
          out.failure = null;
        } catch (err) {
          out.failure = `could not open its socket: ${(err as Error).message}`;
        }
      }
    });
    try {
      this.xdp!.set(rule, this.xdpOutputs(state));
    } catch (err) {
      this.log.error({ err, rule: rule.id }, 'XDP outputs could not be updated; the rule keeps its old ones');
    }
  }

  private activateLogged(state: RuleState, why: string): void {
    if (inputProblem(this.links, state.rule, false) !== null) return;
    try {
      this.activate(state, false);
      // The rule.state event says it to the operator.
      this.log.debug({ rule: state.rule.id, name: state.rule.name }, `rule active: ${why}`);
    } catch (err) {
      state.failure = `its input could not be opened: ${(err as Error).message}`;
      this.log.error({ err, rule: state.rule.id }, 'rule could not be activated; it keeps waiting');
    }
  }

  /** Takes an active rule out of the workers and closes its sockets; it waits from now on. */
  private deactivate(state: RuleState): void {
    if (!state.active) return;
    const { rule } = state;
    state.active = false;
    this.hash = undefined;
    if (state.path === 'xdp') this.xdp!.remove(rule);
    else for (const id of this.workers.ids()) this.workers.send(id, { type: 'rule.remove', id: rule.id });
    for (const out of state.outputs) this.closeOutputOf(out);
    if (this.sockets.releaseInput(rule)) {
      for (const id of this.workers.ids())
        this.workers.send(id, { type: 'input.detach', interface: rule.inputInterface });
    }
  }

  private reevaluateActive(state: RuleState, name: string, change: LinkChange): void {
    const { rule } = state;
    const why = inputProblem(this.links, rule, true);
    if (why !== null) {
      this.deactivate(state);
      this.log.debug({ rule: rule.id, name: rule.name, why }, 'rule is waiting again');
      return;
    }
    if (this.xdp && (rule.inputInterface === name || rule.outputs.some((o) => o.interface === name))) {
      if (this.switchesPath(state)) {
        this.deactivate(state);
        this.activateLogged(state, `${name} ${change}`);
        return;
      }
      if (state.path === 'xdp') {
        this.refreshXdp(state, (o) => o.interface === name);
        return;
      }
    }
    rule.outputs.forEach((output, i) => {
      if (output.interface !== name) return;
      const out = state.outputs[i]!;
      const problem = outputProblem(this.links, output);
      if (out.sockets) {
        if (problem?.detach) this.detachOutput(state, i, problem.reason);
        // A connected UDP socket keeps the source address it had when it connected, and a raw
        // header template holds the address and the MTU: both are made anew.
        else if (change === 'addresses' || change === 'mtu') this.attachOutput(state, i, `${name} ${change}`);
      } else if (problem === null) {
        this.attachOutput(state, i, `${name} ${change}`);
      }
    });
  }

  /** Opens output `index` and gives it to the workers (replacing the sockets it had, if any). */
  private attachOutput(state: RuleState, index: number, why: string): void {
    const { rule } = state;
    const output = rule.outputs[index]!;
    const out = state.outputs[index]!;
    let fresh: OutputSockets;
    try {
      fresh = this.sockets.openOutput(rule, index, this.linkOf(output));
    } catch (err) {
      out.failure = `could not open its sockets: ${(err as Error).message}`;
      this.log.error({ err, rule: rule.id, output: describeOutput(output) }, 'output could not be opened');
      if (out.sockets) this.detachOutput(state, index, out.failure);
      return;
    }
    const message = {
      type: 'output.attach',
      ruleId: rule.id,
      index,
      egress: fresh.raw?.spec ?? null,
    } as const;
    const fds = fresh.raw ? [fresh.socketFd, fresh.raw.fd] : [fresh.socketFd];
    for (const id of this.workers.ids()) this.workers.send(id, message, fds);
    this.closeOutputOf(out);
    out.sockets = fresh;
    out.failure = null;
    this.hash = undefined;
    this.log.info(
      { rule: rule.id, output: describeOutput(output), path: fresh.raw ? 'raw' : 'socket' },
      `output attached: ${why}`,
    );
  }

  private detachOutput(state: RuleState, index: number, why: string): void {
    const output = state.rule.outputs[index]!;
    for (const id of this.workers.ids())
      this.workers.send(id, { type: 'output.detach', ruleId: state.rule.id, index });
    this.closeOutputOf(state.outputs[index]!);
    this.hash = undefined;
    this.log.warn({ rule: state.rule.id, output: describeOutput(output), why }, 'output detached');
  }

  private closeOutputOf(out: OutputState): void {
    if (out.sockets) this.sockets.closeOutput(out.sockets);
    out.sockets = null;
  }

  /** Worker `id` finished handing input `name` over to new sockets. */
  inputHandedOver(id: number, name: string): void {
    this.inputs.handedOver(id, name);
  }

  /** rule.add with the sockets of its attached outputs: UDP sockets in output order, then the raw ones. */
  private sendRule(id: number, state: RuleState): void {
    const attached = state.outputs.flatMap((o) => (o.sockets ? [o.sockets] : []));
    const fds = [...attached.map((s) => s.socketFd), ...attached.flatMap((s) => (s.raw ? [s.raw.fd] : []))];
    this.workers.send(id, { type: 'rule.add', rule: workerRule(state), counters: slotsOf(state) }, fds);
  }

  private sendHostAddressesIfChanged(): void {
    const addresses = this.currentAddresses();
    const key = addresses.join(',');
    if (key === this.sentAddresses) return;
    this.sentAddresses = key;
    this.xdp?.setHostAddresses(addresses);
    for (const id of this.workers.ids()) this.workers.send(id, { type: 'host.addresses', addresses });
  }

  private currentAddresses(): number[] {
    return [...new Set(this.links.hostAddresses())].sort((a, b) => a - b);
  }

  private linkOf(output: Output): LinkState | undefined {
    return output.interface === undefined ? undefined : this.links.get(output.interface);
  }
}
