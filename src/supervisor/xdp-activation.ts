import type { Logger } from 'pino';
import type { RuleCounters } from '../protocol/control-api.js';
import type { Output, Rule } from '../rules/rule.js';
import type { XdpOutput, XdpRuleCounters } from '../xdp/xdp-input.js';
import type { RuleKey } from '../xdp/xdp-maps.js';
import type { LinkState, Links } from './links.js';
import { addXdpTotals, emptyXdpTotals, mergeXdpCounters, type XdpRuleTotals } from './xdp-counters.js';
import { choosePath, type PathChoice, type XdpLinkFacts } from './xdp-path-choice.js';
import { forcesXdp } from '../rules/xdp-eligibility.js';

/** What the supervisor uses of an XdpInput (the real one, or a fake's). */
export interface XdpInputPort {
  programId(): number;
  setRule(key: RuleKey, outputs: readonly XdpOutput[]): void;
  removeRule(key: RuleKey): XdpRuleCounters | undefined;
  setHostAddresses(addresses: readonly number[]): void;
  readCounters(): XdpRuleCounters[];
  close(): void;
}

/** The host behind the XDP path: XdpInput, drivers' facts, output links' addresses. */
export interface XdpSystem {
  /** Why mcrd cannot load programs (a capability it lacks), or null. */
  readonly privilege: string | null;
  open(ifindex: number, name: string): XdpInputPort;
  linkFacts(link: LinkState): XdpLinkFacts;
  /** The Ethernet address and primary IPv4 address of an output link (as the raw path's header has them). */
  source(name: string): { mac: Uint8Array; address: number } | undefined;
  /** The local UDP port of an output's socket (the XDP copies leave from it, as raw ones do). */
  localPort(fd: number): number;
}

/** An output of an XDP rule with its socket: the socket holds the source port. */
export interface XdpRuleOutput {
  id: string;
  output: Output;
  socketFd: number;
}

interface InputState {
  port: XdpInputPort;
  ifindex: number;
  rules: Map<string, RuleKey>;
  /** The last readCounters() by rule key, and when (a sample merges every rule of the input). */
  read: { at: number; counters: Map<string, XdpRuleCounters> } | null;
}

/** A sample reads every rule's counters at once: one read of an input's maps serves all of them. */
const READ_REUSE_MS = 50;

/**
 * The XDP path of every input interface, for rule activation: which path a rule takes, the
 * XdpInput of each input (opened with its first XDP rule, closed with its last), each rule's
 * outputs in the maps, the host's addresses, and the counts, kept so they never go backwards.
 * mcrd holds the bpf_link fds: when it dies, the kernel detaches every program.
 */
export class XdpPaths {
  private readonly system: XdpSystem;
  private readonly links: Links;
  private readonly log: Logger;
  private readonly inputs = new Map<string, InputState>();
  /** Why attaching to an input failed, until a change of that link (or a new rule) tries again. */
  private readonly failures = new Map<string, string>();
  /** Counts of rules' earlier XDP lives, by rule id, until the rule is removed. */
  private readonly carried = new Map<string, XdpRuleTotals>();
  private readonly lastSeen = new Map<string, { packets: number; at: Date }>();
  private addresses: readonly number[] = [];

  constructor(system: XdpSystem, links: Links, log: Logger) {
    this.system = system;
    this.links = links;
    this.log = log;
  }

  choose(rule: Rule): PathChoice {
    return choosePath(rule, {
      privilege: this.system.privilege,
      link: (name) => {
        const link = this.links.get(name);
        return link && { ...link, ...this.system.linkFacts(link) };
      },
      attachFailure: (name) => this.failures.get(name),
    });
  }

  /**
   * The path a rule enters now: XDP when choose() says so and its input's program is attached
   * (prepare), else the worker path with the reason (for a forced rule: why it cannot go). A
   * forced rule tries to attach again at every chance (the other program may be gone); an auto
   * rule only when asked (`retry`: an operator's add) or when its input appears, so that another
   * program on the input causes no churn.
   */
  enter(rule: Rule, input: LinkState, addresses: readonly number[], retry: boolean): PathChoice {
    if (retry || forcesXdp(rule)) this.retry(rule);
    const choice = this.choose(rule);
    if (choice.path !== 'xdp') return choice;
    this.setHostAddresses(addresses);
    try {
      this.prepare(rule, input);
      return choice;
    } catch (err) {
      return { ...choice, path: 'worker', reason: (err as Error).message };
    }
  }

  /** Whether an active rule on `current` would now take the other path (or, forced, none). */
  switches(rule: Rule, current: 'worker' | 'xdp'): boolean {
    const choice = this.choose(rule);
    return choice.path !== current || (choice.forced && choice.path === 'worker');
  }

  /** A link changed: attaching to it is worth another try. */
  linkChanged(name: string): void {
    this.failures.delete(name);
  }

  /** An operator's add or update: a failed attach is tried again. */
  retry(rule: Rule): void {
    this.failures.delete(rule.inputInterface);
  }

  /**
   * Makes sure the rule's input has its XdpInput (attached), before anything else is opened for
   * the rule. A failure is remembered as the input's (the reason auto shows) and thrown.
   */
  prepare(rule: Rule, input: LinkState): void {
    const name = rule.inputInterface;
    const known = this.inputs.get(name);
    if (known !== undefined && known.ifindex === input.ifindex) return;
    if (known !== undefined) this.closeInput(name, known);
    try {
      const port = this.system.open(input.ifindex, name);
      port.setHostAddresses(this.addresses);
      this.inputs.set(name, { port, ifindex: input.ifindex, rules: new Map(), read: null });
      this.log.info({ interface: name, program: port.programId() }, 'XDP program attached');
    } catch (err) {
      const reason = `${name}: XDP could not be attached: ${(err as Error).message}`;
      this.failures.set(name, reason);
      this.closeIfUnused(name);
      throw new Error(reason, { cause: err });
    }
  }

  /** Puts the rule's attached outputs in the maps (all of them: a new rule or a change of any). */
  set(rule: Rule, outputs: readonly XdpRuleOutput[]): void {
    const input = this.inputs.get(rule.inputInterface);
    if (input === undefined) throw new Error(`XDP of ${rule.inputInterface} is not open (rule ${rule.id})`);
    const key = keyOf(rule);
    const before = input.rules.has(rule.id) ? this.liveCounters(input, key, true) : undefined;
    input.port.setRule(
      key,
      outputs.map((o) => this.xdpOutput(o)),
    );
    input.rules.set(rule.id, key);
    input.read = null; // counter rows moved: a read from before must not be merged again
    // An output that leaves the maps (its link or address gone) takes its counter row with it:
    // what it counted is carried, so it does not start from 0 when it comes back.
    const staying = new Set(outputs.map((o) => o.id));
    const leaving = before?.outputs.filter((o) => !staying.has(o.id)) ?? [];
    if (leaving.length > 0) {
      const zero = emptyXdpTotals().counts;
      this.carried.set(rule.id, addXdpTotals(this.carriedOf(rule.id), { counts: zero, outputs: leaving }));
    }
  }

  /** Takes the rule out of the maps; its counts are kept. The input's XDP closes with its last rule. */
  remove(rule: Rule): void {
    const name = rule.inputInterface;
    const input = this.inputs.get(name);
    if (input === undefined) return;
    const key = input.rules.get(rule.id);
    if (key !== undefined) {
      const last = input.port.removeRule(key);
      if (last !== undefined) this.carried.set(rule.id, addXdpTotals(this.carriedOf(rule.id), last));
      input.rules.delete(rule.id);
      input.read = null;
    }
    // Also after a first setRule that failed: an input with no rule keeps no program attached.
    this.closeIfUnused(name);
  }

  /** The rule is gone for good: its counts go with it. */
  forget(id: string): void {
    this.carried.delete(id);
    this.lastSeen.delete(id);
  }

  setHostAddresses(addresses: readonly number[]): void {
    this.addresses = [...addresses];
    for (const input of this.inputs.values()) input.port.setHostAddresses(this.addresses);
  }

  /** The rule's counters with its XDP counts (now and earlier) added; `ids[i]`: output i's id. */
  merge(rule: Rule, worker: RuleCounters, ids: readonly string[]): RuleCounters {
    let totals = this.carried.get(rule.id);
    const input = this.inputs.get(rule.inputInterface);
    if (input?.rules.has(rule.id)) {
      const live = this.liveCounters(input, input.rules.get(rule.id)!);
      if (live !== undefined) totals = addXdpTotals(totals ?? emptyXdpTotals(), live);
    }
    if (totals === undefined) return worker;
    const seen = this.lastSeen.get(rule.id);
    if (seen === undefined || totals.counts.packets > seen.packets) {
      if (totals.counts.packets > 0)
        this.lastSeen.set(rule.id, { packets: totals.counts.packets, at: new Date() });
    }
    return mergeXdpCounters(worker, { ...totals, lastPacketAt: this.lastSeen.get(rule.id)?.at ?? null }, ids);
  }

  /** The id of mcr's program on an input, when it has one. */
  programId(name: string): number | undefined {
    return this.inputs.get(name)?.port.programId();
  }

  /** Detaches every program (mcrd stops). */
  close(): void {
    for (const [name, input] of this.inputs) this.closeInput(name, input);
  }

  private xdpOutput(o: XdpRuleOutput): XdpOutput {
    const name = o.output.interface!;
    const link = this.links.get(name);
    const source = this.system.source(name);
    if (link === undefined || source === undefined || source.mac.length !== 6) {
      throw new Error(`${name} has no Ethernet and IPv4 address for XDP copies`);
    }
    return {
      id: o.id,
      ifindex: link.ifindex,
      sourceMac: source.mac,
      sourceAddress: source.address,
      sourcePort: this.system.localPort(o.socketFd),
      group: o.output.group,
      port: o.output.port,
      ttl: o.output.ttl,
      ttlFixed: o.output.ttlFixed,
      dscp: o.output.dscp,
    };
  }

  /** A rule's counters as the maps hold them; `fresh`: read now, not within READ_REUSE_MS. */
  private liveCounters(input: InputState, key: RuleKey, fresh = false): XdpRuleCounters | undefined {
    const now = performance.now();
    if (fresh || input.read === null || now - input.read.at > READ_REUSE_MS) {
      const counters = new Map(input.port.readCounters().map((c) => [keyText(c.key), c]));
      input.read = { at: now, counters };
    }
    return input.read.counters.get(keyText(key));
  }

  private carriedOf(id: string): XdpRuleTotals {
    return this.carried.get(id) ?? emptyXdpTotals();
  }

  private closeIfUnused(name: string): void {
    const input = this.inputs.get(name);
    if (input !== undefined && input.rules.size === 0) this.closeInput(name, input);
  }

  private closeInput(name: string, input: InputState): void {
    for (const [id, key] of input.rules) {
      const last = this.liveCounters(input, key, true);
      if (last !== undefined) this.carried.set(id, addXdpTotals(this.carriedOf(id), last));
    }
    input.port.close();
    this.inputs.delete(name);
    this.log.info({ interface: name }, 'XDP program detached');
  }
}

function keyOf(rule: Rule): RuleKey {
  return { group: rule.inputGroup, port: rule.inputPort, vlan: rule.inputVlan };
}

function keyText(key: RuleKey): string {
  return `${key.group}:${key.port}:${key.vlan}`;
}
