import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import type {
  MethodName,
  RuleCounters,
  RuleStatsView,
  RuleView,
  StatsView,
  WorkerStatsView,
  WorkerView,
} from '../protocol/control-api.js';
import { addRuleCounters, emptyRuleCounters, emptyWorkerCounters } from '../protocol/counters.js';
import { ControlError, PROTOCOL_VERSION } from '../protocol/json-rpc.js';
import type { DataPlaneSettings, WorkerRule, WorkerStatsReport } from '../protocol/worker-messages.js';
import { describeOutput, type Rule, type RuleRequest } from '../rules/rule.js';
import { validateRule } from '../rules/validate-rule.js';
import type { Account } from '../sys/privileges.js';
import { rulesetHash } from '../rules/ruleset-hash.js';
import { claimSocketPath, ControlServer, type MethodHandler } from './control-server.js';
import { InterfaceMonitor } from './interface-monitor.js';
import { InputSockets } from './input-sockets.js';
import { closeOutputSockets, openOutputSockets, type OutputSockets } from './output-sockets.js';
import { RuleStore, type StoredRule } from './rule-store.js';
import { ruleRates, workerRates } from './stats-collector.js';
import { WorkerPool } from './worker-pool.js';

export interface SupervisorOptions {
  socketPath: string;
  workers: number;
  fanout: 'hash' | 'cpu';
  /** CPUs to pin workers to. */
  cpus: number[];
  /** The account workers run as. */
  account: Account;
  /** Raw egress skips the queueing discipline (PACKET_QDISC_BYPASS). */
  qdiscBypass: boolean;
  /** Expose fault-injection methods (debug.*) on the control socket, for tests. */
  debugMethods: boolean;
  workerEntry: string;
  logLevel: string;
  log: Logger;
  version: string;
  settings: DataPlaneSettings;
}

/** What an active rule holds beyond its input: one connected UDP socket per output. */
interface RuleRuntime {
  outputs: OutputSockets[];
  joined: boolean;
}

const STATS_TIMEOUT_MS = 2000;
const WORKER_START_TIMEOUT_MS = 10000;

/**
 * mcrd's supervisor: the rule table, every privileged socket, the workers and the control
 * socket. It never touches a packet.
 */
export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly log: Logger;
  private readonly store = new RuleStore();
  /** Active rules (their sockets are open and the workers have them); the rest are waiting. */
  private readonly runtime = new Map<string, RuleRuntime>();
  private readonly interfaces: InterfaceMonitor;
  private readonly inputs: InputSockets;
  private readonly pool: WorkerPool;
  private server: ControlServer | undefined;
  private readonly startedAt = Date.now();
  /** Hash of the rule table as workers should hold it; cleared whenever the table changes. */
  private rulesHash: string | undefined;

  private constructor(options: SupervisorOptions) {
    this.options = options;
    this.log = options.log;
    this.inputs = new InputSockets(options.log, options.workers, options.fanout);
    this.interfaces = new InterfaceMonitor(options.log);
    this.followInterfaces();
    this.pool = new WorkerPool({
      count: options.workers,
      cpus: options.cpus,
      account: options.account,
      expectedRulesHash: () => (this.rulesHash ??= this.activeRulesHash()),
      resyncRules: (id) => this.sendRules(id),
      entry: options.workerEntry,
      logLevel: options.logLevel,
      settings: options.settings,
      log: options.log,
      sync: (id) => this.syncWorker(id),
    });
  }

  static async start(options: SupervisorOptions): Promise<Supervisor> {
    // Refuse early, before any worker or socket exists, if another mcrd serves this path.
    await claimSocketPath(options.socketPath);
    const supervisor = new Supervisor(options);
    try {
      await supervisor.interfaces.ready;
      await supervisor.pool.ready(WORKER_START_TIMEOUT_MS);
      supervisor.server = await ControlServer.listen(options.socketPath, supervisor.handlers(), options.log);
    } catch (err) {
      await supervisor.pool.stop(1000);
      supervisor.interfaces.close();
      throw err;
    }
    options.log.info(
      { socket: options.socketPath, workers: options.workers, version: options.version },
      'mcrd ready',
    );
    return supervisor;
  }

  /** Stops serving, drains the workers, logs the final counters and releases every socket. */
  async stop(): Promise<void> {
    await this.server?.close();
    const final = await this.pool.collect(STATS_TIMEOUT_MS);
    this.log.info(
      { rules: this.aggregateRuleCounters(final), workers: final.map((r) => r?.worker ?? null) },
      'final counters',
    );
    await this.pool.stop(3000);
    this.interfaces.close();
    for (const runtime of this.runtime.values()) runtime.outputs.forEach(closeOutputSockets);
    this.runtime.clear();
    this.inputs.closeAll();
    this.log.info('mcrd stopped');
  }

  private handlers(): Map<MethodName, MethodHandler> {
    return new Map<MethodName, MethodHandler>([
      [
        'ping',
        () => ({
          pong: true,
          pid: process.pid,
          uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
        }),
      ],
      [
        'version',
        () => ({ version: this.options.version, protocol: PROTOCOL_VERSION, node: process.version }),
      ],
      ['rules.add', (p) => ({ rule: this.addRule(p as RuleRequest) })],
      ['rules.remove', (p) => ({ removed: this.removeRule(p as { id?: string; name?: string }) })],
      ['rules.list', () => ({ rules: this.store.list().map((r) => this.ruleView(r)) })],
      ['stats.get', () => this.stats()],
      ['workers.list', () => ({ workers: this.workerViews() })],
      ...(this.options.debugMethods
        ? ([
            ['debug.forgetRule', (p: unknown) => this.forgetRule(p as { worker: number; id: string })],
          ] as const)
        : []),
    ]);
  }
  /** Fault injection (--debug-methods): makes one worker drop a rule behind the supervisor's back. */
  private forgetRule(params: { worker: number; id: string }): { sent: boolean } {
    this.store.find({ id: params.id });
    if (!this.pool.slots[params.worker]) {
      throw new ControlError('E_WORKER_NOT_FOUND', `no worker ${params.worker}`, {
        field: 'worker',
        value: params.worker,
      });
    }
    this.pool.send(params.worker, { type: 'debug.forget', id: params.id });
    return { sent: true };
  }

  /**
   * Adds a rule. It becomes active at once if its interfaces exist, else it waits for them; an
   * interface that later vanishes puts it back to waiting. Socket errors while activating a new
   * rule refuse it, so the operator learns of them.
   */
  private addRule(request: RuleRequest): RuleView {
    const rule = validateRule(request);
    this.store.checkAddable(rule);
    const stored = this.store.add(rule);
    try {
      this.activateIfReady(rule);
    } catch (err) {
      this.store.remove(rule.id);
      throw err;
    }
    const runtime = this.runtime.get(rule.id);
    this.log.info(
      {
        rule: rule.id,
        name: rule.name,
        input: `${rule.inputInterface} ${ipv4ToString(rule.inputGroup)}:${rule.inputPort}`,
        outputs: rule.outputs.map(describeOutput),
        state: runtime ? 'active' : 'waiting',
      },
      'rule added',
    );
    return this.ruleView(stored);
  }

  private removeRule(selector: { id?: string; name?: string }): RuleView {
    const stored = this.store.find(selector);
    this.deactivate(stored.rule);
    this.store.remove(stored.rule.id);
    this.log.info({ rule: stored.rule.id, name: stored.rule.name }, 'rule removed');
    return this.ruleView(stored);
  }

  /**
   * What keeps a rule from being activated, in words (empty when nothing does): an interface it
   * needs does not exist, or its input interface has not been brought up yet. (An ingress socket
   * bound to an interface that is still down did not receive once the interface came up, in a
   * measured case on this kernel; one bound while up keeps working across later down/up.)
   */
  private blockers(rule: Rule): string[] {
    const names = [rule.inputInterface, ...rule.outputs.flatMap((o) => (o.interface ? [o.interface] : []))];
    const missing = [...new Set(names)].filter((name) => !this.interfaces.get(name));
    if (missing.length > 0) return [`waiting for ${missing.join(', ')}`];
    if (!this.interfaces.get(rule.inputInterface)!.up)
      return [`waiting for ${rule.inputInterface} to come up`];
    return [];
  }

  /** Opens a waiting rule's sockets and hands them to the workers, if its interfaces exist. */
  private activateIfReady(rule: Rule): void {
    if (this.runtime.has(rule.id) || this.blockers(rule).length > 0) return;
    const input = this.interfaces.get(rule.inputInterface)!;
    const join = !rule.unicastInput;
    const { created } = this.inputs.acquire(
      rule.inputInterface,
      input.ifindex,
      input.mtu,
      rule.inputGroup,
      join,
    );
    let outputs: OutputSockets[];
    try {
      outputs = rule.outputs.map((_, i) => this.openOutput(rule, i));
    } catch (err) {
      this.inputs.release(rule.inputInterface, rule.inputGroup, join);
      throw err;
    }
    const runtime = { outputs, joined: join };
    this.runtime.set(rule.id, runtime);
    this.rulesHash = undefined;
    for (const slot of this.pool.slots) {
      if (created) this.attachInput(slot.id, rule.inputInterface);
      this.sendRule(slot.id, rule, runtime);
    }
  }

  /** Opens output `index` of a rule; on failure closes nothing of the others (the caller does). */
  private openOutput(rule: Rule, index: number, opened: OutputSockets[] = []): OutputSockets {
    const output = rule.outputs[index]!;
    const ifindex = output.interface ? this.interfaces.get(output.interface)?.ifindex : undefined;
    try {
      return openOutputSockets(output, ifindex, `outputs[${index}]`, this.options.qdiscBypass);
    } catch (err) {
      opened.forEach(closeOutputSockets);
      throw err;
    }
  }

  /** rule.add with the rule's sockets: UDP sockets in output order, then the raw ones. */
  private sendRule(workerId: number, rule: Rule, runtime: RuleRuntime): void {
    const fds = [
      ...runtime.outputs.map((o) => o.socketFd),
      ...runtime.outputs.flatMap((o) => (o.raw ? [o.raw.fd] : [])),
    ];
    const message = { type: 'rule.add', rule: workerRule(rule, runtime) } as const;
    this.pool.send(workerId, message, fds);
  }

  /** Takes an active rule out of the workers and closes its sockets; it stays in the table. */
  private deactivate(rule: Rule): void {
    const runtime = this.runtime.get(rule.id);
    if (!runtime) return;
    this.runtime.delete(rule.id);
    this.rulesHash = undefined;
    for (const slot of this.pool.slots) this.pool.send(slot.id, { type: 'rule.remove', id: rule.id });
    runtime.outputs.forEach(closeOutputSockets);
    if (this.inputs.release(rule.inputInterface, rule.inputGroup, runtime.joined)) {
      for (const slot of this.pool.slots)
        this.pool.send(slot.id, { type: 'input.detach', interface: rule.inputInterface });
    }
  }

  private followInterfaces(): void {
    this.interfaces.on('appeared', (state) => {
      for (const { rule } of this.store.list()) {
        if (!this.runtime.has(rule.id) && this.blockers(rule).length === 0) {
          this.activateLogged(rule, `interface ${state.name} appeared`);
        }
      }
    });
    this.interfaces.on('vanished', (name) => {
      for (const { rule } of this.store.list()) {
        if (this.runtime.has(rule.id) && usesInterface(rule, name)) {
          this.deactivate(rule);
          this.log.warn({ rule: rule.id, interface: name }, 'interface vanished; rule is waiting for it');
        }
      }
    });
    this.interfaces.on('link', (state) => {
      const level = state.running ? 'info' : 'warn';
      this.log[level]({ interface: state.name, up: state.up, running: state.running }, 'link state changed');
      if (!state.up) return;
      for (const { rule } of this.store.list()) {
        if (
          !this.runtime.has(rule.id) &&
          rule.inputInterface === state.name &&
          this.blockers(rule).length === 0
        ) {
          this.activateLogged(rule, `interface ${state.name} came up`);
        }
      }
    });
    this.interfaces.on('addresses', (state) => this.refreshOutputs(state.name, 'addresses changed'));
    // The raw path sends payloads up to the link MTU; the socket path takes larger ones.
    this.interfaces.on('mtu', (state) => this.refreshOutputs(state.name, `MTU now ${state.mtu}`));
  }

  private activateLogged(rule: Rule, why: string): void {
    try {
      this.activateIfReady(rule);
      this.log.info({ rule: rule.id, name: rule.name }, `rule active: ${why}`);
    } catch (err) {
      this.log.error({ err, rule: rule.id }, 'rule could not be activated; it keeps waiting');
    }
  }

  /**
   * A connected UDP socket keeps the source address it had when it connected, and a raw header
   * template holds the address and the MTU: when an output interface's addresses or MTU change,
   * its rules get new output sockets (counters and rules stay).
   */
  private refreshOutputs(interfaceName: string, why: string): void {
    for (const { rule } of this.store.list()) {
      const runtime = this.runtime.get(rule.id);
      if (!runtime || !rule.outputs.some((o) => o.interface === interfaceName)) continue;
      rule.outputs.forEach((output, index) => {
        if (output.interface !== interfaceName) return;
        try {
          const fresh = this.openOutput(rule, index);
          const message = {
            type: 'output.replace',
            ruleId: rule.id,
            index,
            egress: fresh.raw?.spec ?? null,
          } as const;
          const fds = fresh.raw ? [fresh.socketFd, fresh.raw.fd] : [fresh.socketFd];
          for (const slot of this.pool.slots) this.pool.send(slot.id, message, fds);
          closeOutputSockets(runtime.outputs[index]!);
          runtime.outputs[index] = fresh;
        } catch (err) {
          this.log.error(
            { err, rule: rule.id, output: describeOutput(output) },
            'output socket could not be renewed',
          );
        }
      });
      this.log.info({ rule: rule.id, interface: interfaceName }, `${why}; output sockets renewed`);
    }
  }

  private attachInput(workerId: number, interfaceName: string): void {
    const input = this.inputs.get(interfaceName);
    if (!input) return;
    const message = {
      type: 'input.attach',
      interface: input.name,
      ifindex: input.ifindex,
      mtu: input.mtu,
    } as const;
    this.pool.send(workerId, message, [input.fds[workerId]!]);
  }

  /** Gives a (re)started worker everything it must hold: its input sockets and every active rule. */
  private syncWorker(workerId: number): void {
    for (const input of this.inputs.all()) this.attachInput(workerId, input.name);
    this.sendRules(workerId);
  }

  private sendRules(workerId: number): void {
    for (const { rule } of this.store.list()) {
      const runtime = this.runtime.get(rule.id);
      if (runtime) this.sendRule(workerId, rule, runtime);
    }
  }

  private activeRulesHash(): string {
    return rulesetHash(
      this.store.list().flatMap(({ rule }) => {
        const runtime = this.runtime.get(rule.id);
        return runtime ? [workerRule(rule, runtime)] : [];
      }),
    );
  }

  private ruleView(stored: StoredRule): RuleView {
    const { rule } = stored;
    const blockers = this.blockers(rule);
    const input = this.interfaces.get(rule.inputInterface);
    const runtime = this.runtime.get(rule.id);
    let state: RuleView['state'] = 'active';
    let reason: string | null = null;
    if (!this.runtime.has(rule.id)) {
      state = 'waiting';
      reason = blockers[0] ?? 'its sockets could not be opened (see the log)';
    } else if (input && !input.running) {
      state = 'down';
      reason = `${rule.inputInterface} is down`;
    }
    return {
      id: rule.id,
      name: rule.name ?? null,
      input: {
        interface: rule.inputInterface,
        group: ipv4ToString(rule.inputGroup),
        port: rule.inputPort,
        unicast: rule.unicastInput,
      },
      outputs: rule.outputs.map((o, i) => ({
        group: ipv4ToString(o.group),
        port: o.port,
        interface: o.interface ?? null,
        ttl: o.ttl,
        mode: o.mode,
        path: runtime ? (runtime.outputs[i]?.raw ? 'raw' : 'socket') : null,
      })),
      state,
      reason,
      createdAt: stored.createdAt.toISOString(),
    };
  }

  private async stats(): Promise<StatsView> {
    const at = Date.now();
    const reports = await this.pool.collect(STATS_TIMEOUT_MS);
    let rateInterval = 0;
    const ruleNow = new Map<string, RuleCounters>();
    const ruleRate = new Map<string, ReturnType<typeof ruleRates>>();
    const workers: WorkerStatsView[] = this.pool.slots.map((slot, i) => {
      const report = reports[i] ?? slot.stats.latest()?.report;
      const base = slot.stats.baseline(at);
      const seconds = base ? (at - base.at) / 1000 : 0;
      rateInterval = Math.max(rateInterval, seconds);
      for (const [id, counters] of Object.entries(report?.rules ?? {})) {
        const rates = ruleRates(counters, base?.report.rules[id], seconds);
        ruleNow.set(id, addRuleCounters(ruleNow.get(id), counters));
        const sum = ruleRate.get(id);
        ruleRate.set(id, sum ? addRates(sum, rates) : rates);
      }
      const counters = report?.worker ?? emptyWorkerCounters();
      const health = report?.health ?? null;
      return {
        ...this.workerView(slot.id),
        counters,
        health,
        rates: workerRates(counters, base?.report.worker, seconds),
      };
    });
    const rules: RuleStatsView[] = this.store.list().map((stored) => {
      const counters = ruleNow.get(stored.rule.id) ?? emptyRuleCounters(stored.rule.outputs.length);
      const rates = ruleRate.get(stored.rule.id) ?? {
        packetsIn: 0,
        bytesIn: 0,
        outputs: stored.rule.outputs.map(() => 0),
      };
      return { ...this.ruleView(stored), counters, rates };
    });
    return { time: new Date(at).toISOString(), rateInterval, rules, workers };
  }

  private workerViews(): WorkerView[] {
    return this.pool.slots.map((slot) => this.workerView(slot.id));
  }

  private workerView(id: number): WorkerView {
    const slot = this.pool.slots[id]!;
    return {
      id,
      pid: slot.process.pid,
      state: slot.process.state,
      rules: this.runtime.size,
      inputs: [...this.inputs.all()].map((i) => i.name),
      startedAt: slot.process.startedAt?.toISOString() ?? null,
      restarts: slot.restarts,
      resyncs: slot.resyncs,
      cpu: slot.process.cpu,
      user: slot.process.user,
    };
  }

  private aggregateRuleCounters(reports: (WorkerStatsReport | undefined)[]) {
    const total = new Map<string, RuleCounters>();
    for (const report of reports) {
      for (const [id, counters] of Object.entries(report?.rules ?? {}))
        total.set(id, addRuleCounters(total.get(id), counters));
    }
    return Object.fromEntries(total);
  }
}

function usesInterface(rule: Rule, name: string): boolean {
  return rule.inputInterface === name || rule.outputs.some((o) => o.interface === name);
}

function workerRule(rule: Rule, runtime: RuleRuntime): WorkerRule {
  return {
    id: rule.id,
    inputInterface: rule.inputInterface,
    inputGroup: rule.inputGroup,
    inputPort: rule.inputPort,
    outputs: rule.outputs.map(describeOutput),
    egress: runtime.outputs.map((o) => o.raw?.spec ?? null),
  };
}

function addRates(
  a: ReturnType<typeof ruleRates>,
  b: ReturnType<typeof ruleRates>,
): ReturnType<typeof ruleRates> {
  return {
    packetsIn: a.packetsIn + b.packetsIn,
    bytesIn: a.bytesIn + b.bytesIn,
    outputs: a.outputs.map((r, i) => r + (b.outputs[i] ?? 0)),
  };
}
