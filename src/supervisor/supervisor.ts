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
import { ControlError, PROTOCOL_VERSION } from '../protocol/json-rpc.js';
import type { DataPlaneSettings, WorkerRule, WorkerStatsReport } from '../protocol/worker-messages.js';
import { describeOutput, type Rule, type RuleRequest } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import { validateRule } from '../rules/validate-rule.js';
import { interfaceIndex, interfaceInfo } from '../sys/interfaces.js';
import type { Account } from '../sys/privileges.js';
import { closeFd } from '../sys/socket.js';
import { rulesetHash } from '../rules/ruleset-hash.js';
import { ControlServer, type MethodHandler } from './control-server.js';
import { InputSockets } from './input-sockets.js';
import { openOutputSocket } from './output-socket.js';
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
  /** Expose fault-injection methods (debug.*) on the control socket, for tests. */
  debugMethods: boolean;
  workerEntry: string;
  logLevel: string;
  log: Logger;
  version: string;
  settings: DataPlaneSettings;
}

/** The sockets a rule holds beyond its input: one connected UDP socket per output. */
interface RuleSockets {
  outputFds: number[];
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
  private readonly sockets = new Map<string, RuleSockets>();
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
    this.pool = new WorkerPool({
      count: options.workers,
      cpus: options.cpus,
      account: options.account,
      expectedRulesHash: () =>
        (this.rulesHash ??= rulesetHash(this.store.list().map(({ rule }) => workerRule(rule)))),
      resyncRules: (id) => this.sendRules(id),
      entry: options.workerEntry,
      logLevel: options.logLevel,
      settings: options.settings,
      log: options.log,
      sync: (id) => this.syncWorker(id),
    });
  }

  static async start(options: SupervisorOptions): Promise<Supervisor> {
    const supervisor = new Supervisor(options);
    try {
      await supervisor.pool.ready(WORKER_START_TIMEOUT_MS);
      supervisor.server = await ControlServer.listen(options.socketPath, supervisor.handlers(), options.log);
    } catch (err) {
      await supervisor.pool.stop(1000);
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
    for (const sockets of this.sockets.values()) sockets.outputFds.forEach(closeFd);
    this.sockets.clear();
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
      ['rules.list', () => ({ rules: this.store.list().map(ruleView) })],
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

  private addRule(request: RuleRequest): RuleView {
    const rule = validateRule(request);
    this.store.checkAddable(rule);
    const input = interfaceInfo(rule.inputInterface);
    if (!input) {
      throw new RuleError(
        'E_UNKNOWN_INTERFACE',
        'input-interface',
        rule.inputInterface,
        `input-interface ${rule.inputInterface} does not exist on this host (see ip link)`,
      );
    }
    const outputIndexes = rule.outputs.map((o, i) => {
      if (o.interface === undefined) return undefined;
      const index = interfaceIndex(o.interface);
      if (index === undefined) {
        throw new RuleError(
          'E_UNKNOWN_INTERFACE',
          `outputs[${i}].interface`,
          o.interface,
          `outputs[${i}].interface ${o.interface} does not exist on this host (see ip link)`,
        );
      }
      return index;
    });

    const join = !rule.unicastInput;
    const { created } = this.inputs.acquire(
      rule.inputInterface,
      input.index,
      input.mtu,
      rule.inputGroup,
      join,
    );
    const outputFds: number[] = [];
    try {
      rule.outputs.forEach((o, i) => outputFds.push(openOutputSocket(o, outputIndexes[i])));
    } catch (err) {
      outputFds.forEach(closeFd);
      this.inputs.release(rule.inputInterface, rule.inputGroup, join);
      throw err;
    }
    const stored = this.store.add(rule);
    this.rulesHash = undefined;
    this.sockets.set(rule.id, { outputFds, joined: join });
    for (const slot of this.pool.slots) {
      if (created) this.attachInput(slot.id, rule.inputInterface);
      this.pool.send(slot.id, { type: 'rule.add', rule: workerRule(rule) }, outputFds);
    }
    this.log.info(
      {
        rule: rule.id,
        name: rule.name,
        input: `${rule.inputInterface} ${ipv4ToString(rule.inputGroup)}:${rule.inputPort}`,
        outputs: rule.outputs.map(describeOutput),
      },
      'rule added',
    );
    return ruleView(stored);
  }

  private removeRule(selector: { id?: string; name?: string }): RuleView {
    const stored = this.store.find(selector);
    const rule = stored.rule;
    this.store.remove(rule.id);
    this.rulesHash = undefined;
    for (const slot of this.pool.slots) this.pool.send(slot.id, { type: 'rule.remove', id: rule.id });
    const sockets = this.sockets.get(rule.id);
    this.sockets.delete(rule.id);
    sockets?.outputFds.forEach(closeFd);
    if (this.inputs.release(rule.inputInterface, rule.inputGroup, sockets?.joined ?? false)) {
      for (const slot of this.pool.slots)
        this.pool.send(slot.id, { type: 'input.detach', interface: rule.inputInterface });
    }
    this.log.info({ rule: rule.id, name: rule.name }, 'rule removed');
    return ruleView(stored);
  }

  private attachInput(workerId: number, interfaceName: string): void {
    const input = this.inputs.get(interfaceName);
    if (!input) return;
    this.pool.send(
      workerId,
      { type: 'input.attach', interface: input.name, ifindex: input.ifindex, mtu: input.mtu },
      [input.fds[workerId]!],
    );
  }

  /** Gives a (re)started worker everything it must hold: its input sockets and every rule. */
  private syncWorker(workerId: number): void {
    for (const input of this.inputs.all()) this.attachInput(workerId, input.name);
    this.sendRules(workerId);
  }

  private sendRules(workerId: number): void {
    for (const { rule } of this.store.list()) {
      const fds = this.sockets.get(rule.id)?.outputFds ?? [];
      this.pool.send(workerId, { type: 'rule.add', rule: workerRule(rule) }, fds);
    }
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
      const counters = report?.worker ?? emptyWorker();
      return {
        ...this.workerView(slot.id),
        counters,
        rates: workerRates(counters, base?.report.worker, seconds),
      };
    });
    const rules: RuleStatsView[] = this.store.list().map((stored) => {
      const counters = ruleNow.get(stored.rule.id) ?? emptyRule(stored.rule);
      const rates = ruleRate.get(stored.rule.id) ?? {
        packetsIn: 0,
        bytesIn: 0,
        outputs: stored.rule.outputs.map(() => 0),
      };
      return { ...ruleView(stored), counters, rates };
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
      rules: this.store.size,
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

function workerRule(rule: Rule): WorkerRule {
  return {
    id: rule.id,
    inputInterface: rule.inputInterface,
    inputGroup: rule.inputGroup,
    inputPort: rule.inputPort,
    outputs: rule.outputs.map(describeOutput),
  };
}

export function ruleView(stored: StoredRule): RuleView {
  const { rule } = stored;
  return {
    id: rule.id,
    name: rule.name ?? null,
    input: {
      interface: rule.inputInterface,
      group: ipv4ToString(rule.inputGroup),
      port: rule.inputPort,
      unicast: rule.unicastInput,
    },
    outputs: rule.outputs.map((o) => ({
      group: ipv4ToString(o.group),
      port: o.port,
      interface: o.interface ?? null,
      ttl: o.ttl,
    })),
    state: 'active',
    createdAt: stored.createdAt.toISOString(),
  };
}

function addRuleCounters(a: RuleCounters | undefined, b: RuleCounters): RuleCounters {
  if (!a)
    return {
      packetsIn: b.packetsIn,
      bytesIn: b.bytesIn,
      outputs: b.outputs.map((o) => ({ packets: o.packets, errors: { ...o.errors } })),
    };
  return {
    packetsIn: a.packetsIn + b.packetsIn,
    bytesIn: a.bytesIn + b.bytesIn,
    outputs: a.outputs.map((o, i) => {
      const other = b.outputs[i];
      const errors = { ...o.errors };
      for (const [name, n] of Object.entries(other?.errors ?? {})) errors[name] = (errors[name] ?? 0) + n;
      return { packets: o.packets + (other?.packets ?? 0), errors };
    }),
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

function emptyRule(rule: Rule): RuleCounters {
  return { packetsIn: 0, bytesIn: 0, outputs: rule.outputs.map(() => ({ packets: 0, errors: {} })) };
}

function emptyWorker(): WorkerStatsView['counters'] {
  return {
    framesSeen: 0,
    forwarded: 0,
    notIpv4Udp: 0,
    malformed: 0,
    fragments: 0,
    noRule: 0,
    dropsByReason: {},
    egressErrors: 0,
    ringDrops: 0,
  };
}
