import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import type {
  MethodName,
  ParamsOf,
  ResultOf,
  RuleCounters,
  RuleStatsView,
  RuleView,
  StatsView,
  WorkerStatsView,
  WorkerView,
} from '../protocol/control-api.js';
import { addRuleCounters, emptyRuleCounters, emptyWorkerCounters } from '../protocol/counters.js';
import { ControlError, PROTOCOL_VERSION, RPC_INVALID_PARAMS } from '../protocol/json-rpc.js';
import type { DataPlaneSettings, WorkerStatsReport } from '../protocol/worker-messages.js';
import { describeInput, describeOutput, type RuleRequest } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import { validateRule } from '../rules/validate-rule.js';
import type { Account } from '../sys/privileges.js';
import { hasOwnFilter, seccompStatus } from '../sys/seccomp.js';
import { claimSocketPath, ControlServer, type MethodHandler } from './control-server.js';
import { InterfaceMonitor } from './interface-monitor.js';
import { RuleActivation } from './rule-activation.js';
import { RuleStore, type StoredRule } from './rule-store.js';
import { SystemSockets } from './system-sockets.js';
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

const STATS_TIMEOUT_MS = 2000;
/** A worker reports a debug.tryDenied attempt at once; this only bounds a worker that hangs. */
const TRY_DENIED_TIMEOUT_MS = 5000;
const WORKER_START_TIMEOUT_MS = 10000;

/**
 * mcrd's supervisor: the rule table, every privileged socket, the workers and the control
 * socket. It never touches a packet.
 */
export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly log: Logger;
  private readonly store = new RuleStore();
  private readonly interfaces: InterfaceMonitor;
  private readonly sockets: SystemSockets;
  private readonly activation: RuleActivation;
  private readonly pool: WorkerPool;
  private server: ControlServer | undefined;
  private readonly startedAt = Date.now();
  /** The supervisor's own seccomp state: filters it has, its workers inherit (see hasOwnFilter). */
  private readonly seccomp = seccompStatus();

  private constructor(options: SupervisorOptions) {
    this.options = options;
    this.log = options.log;
    this.sockets = new SystemSockets(options.log, options.workers, options.fanout, options.qdiscBypass);
    this.interfaces = new InterfaceMonitor(options.log);
    this.pool = new WorkerPool({
      count: options.workers,
      cpus: options.cpus,
      account: options.account,
      expectedRulesHash: () => this.activation.expectedHash(),
      resyncRules: (id) => this.activation.sendRules(id),
      entry: options.workerEntry,
      logLevel: options.logLevel,
      settings: options.settings,
      log: options.log,
      sync: (id) => this.activation.syncWorker(id),
    });
    this.activation = new RuleActivation({
      links: this.interfaces,
      sockets: this.sockets,
      workers: {
        ids: () => this.pool.slots.map((s) => s.id),
        send: (id, m, fds) => this.pool.send(id, m, fds),
      },
      log: options.log,
      ringBytes: options.settings.ringBytes,
    });
    this.followInterfaces();
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
    this.activation.close();
    this.sockets.closeAll();
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
            ['debug.tryDenied', (p: unknown) => this.tryDenied(p as ParamsOf<'debug.tryDenied'>)],
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
   * Fault injection (--debug-methods): one worker attempts an operation its system-call filter
   * denies and reports the outcome as the command's error (the errno name, or E_NOT_CONFINED).
   */
  private tryDenied(params: ParamsOf<'debug.tryDenied'>): Promise<ResultOf<'debug.tryDenied'>> {
    const { worker: id, operation } = params;
    const worker = this.pool.slots[id]?.process;
    if (!worker)
      throw new ControlError('E_WORKER_NOT_FOUND', `no worker ${id}`, { field: 'worker', value: id });
    if (operation === 'kill' && params.pid === undefined) {
      throw new ControlError(
        'E_INVALID_PARAMS',
        'debug.tryDenied: kill needs pid, the process to send signal 0 to',
        { field: 'pid' },
        RPC_INVALID_PARAMS,
      );
    }
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        worker.off('failure', onOutcome);
        worker.off('exit', onExit);
      };
      const onOutcome = (message: { code: string; message: string; subject: string }): void => {
        if (message.subject !== 'debug.tryDenied') return;
        done();
        // From the worker: untrusted, kept short.
        resolve({
          worker: id,
          operation,
          outcome: String(message.code).slice(0, 64),
          message: String(message.message).slice(0, 500),
        });
      };
      const onExit = (): void => {
        done();
        reject(new ControlError('E_WORKER_EXITED', `worker ${id} exited during the attempt (${operation})`));
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new ControlError('E_TIMEOUT', `worker ${id} did not report its attempt (${operation}) within 5 s`),
        );
      }, TRY_DENIED_TIMEOUT_MS);
      worker.on('failure', onOutcome);
      worker.once('exit', onExit);
      if (!worker.send({ type: 'debug.tryDenied', operation, pid: params.pid ?? null })) {
        done();
        reject(new ControlError('E_WORKER_EXITED', `worker ${id} is not running`));
      }
    });
  }

  /**
   * Adds a rule. It becomes active at once if its input is usable, else it waits for it; an
   * interface that later vanishes puts it back to waiting. Socket errors while activating a new
   * rule refuse it, so the operator learns of them.
   */
  private addRule(request: RuleRequest): RuleView {
    const rule = validateRule(request);
    this.store.checkAddable(rule);
    if (rule.unicastInput && !this.interfaces.hostAddresses().includes(rule.inputGroup)) {
      const address = ipv4ToString(rule.inputGroup);
      throw new RuleError(
        'E_NOT_LOCAL_ADDRESS',
        'input-group',
        address,
        `input-group ${address} is not an address of this host: a unicast input relays traffic sent to this host, so use one of its addresses (ip -4 addr)`,
      );
    }
    this.activation.add(rule);
    const stored = this.store.add(rule);
    const view = this.ruleView(stored);
    this.log.info(
      {
        rule: rule.id,
        name: rule.name,
        input: describeInput(rule),
        outputs: rule.outputs.map(describeOutput),
        state: view.state,
        reason: view.reason,
      },
      'rule added',
    );
    return view;
  }

  private removeRule(selector: { id?: string; name?: string }): RuleView {
    const stored = this.store.find(selector);
    const view = this.ruleView(stored);
    this.activation.remove(stored.rule.id);
    this.store.remove(stored.rule.id);
    this.log.info({ rule: stored.rule.id, name: stored.rule.name }, 'rule removed');
    return view;
  }

  /** Every change of an interface re-evaluates the rules, whether it is their input or an output. */
  private followInterfaces(): void {
    this.interfaces.on('appeared', (state) => this.activation.linkChanged(state.name, 'appeared'));
    this.interfaces.on('vanished', (name) => this.activation.linkChanged(name, 'vanished'));
    this.interfaces.on('link', (state) => {
      const level = state.running ? 'info' : 'warn';
      this.log[level]({ interface: state.name, up: state.up, running: state.running }, 'link state changed');
      this.activation.linkChanged(state.name, 'link');
    });
    this.interfaces.on('addresses', (state) => this.activation.linkChanged(state.name, 'addresses'));
    this.interfaces.on('mtu', (state) => {
      this.log.info({ interface: state.name, mtu: state.mtu }, 'MTU changed');
      this.activation.linkChanged(state.name, 'mtu');
    });
  }

  private ruleView(stored: StoredRule): RuleView {
    const { rule } = stored;
    const activation = this.activation.view(rule.id);
    return {
      id: rule.id,
      name: rule.name ?? null,
      input: {
        interface: rule.inputInterface,
        vlan: rule.inputVlan === 0 ? null : rule.inputVlan,
        group: ipv4ToString(rule.inputGroup),
        port: rule.inputPort,
        unicast: rule.unicastInput,
      },
      outputs: rule.outputs.map((o, i) => ({
        group: ipv4ToString(o.group),
        port: o.port,
        interface: o.interface ?? null,
        ttl: o.ttl,
        ttlFixed: o.ttlFixed,
        dscp: o.dscp ?? null,
        mode: o.mode,
        ...activation.outputs[i]!,
      })),
      state: activation.state,
      reason: activation.reason,
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
      rules: this.activation.activeCount(),
      inputs: [...this.sockets.inputs()].map((i) => i.name),
      startedAt: slot.process.startedAt?.toISOString() ?? null,
      restarts: slot.restarts,
      resyncs: slot.resyncs,
      cpu: slot.process.cpu,
      user: slot.process.user,
      confined: this.confined(slot.process.pid, slot.process.state),
    };
  }

  /** Read from /proc: a running worker applied its filter (or not) before it said it was ready. */
  private confined(pid: number | null, state: WorkerView['state']): boolean | null {
    if (pid === null || state !== 'running') return null;
    const status = seccompStatus(pid);
    return status ? hasOwnFilter(status, this.seccomp) : null;
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
