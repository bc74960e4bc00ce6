import { chmodSync, chownSync } from 'node:fs';
import type { Logger } from 'pino';
import type {
  LogLevels,
  MethodName,
  ParamsOf,
  RuleView,
  TraceParams,
  WorkerView,
} from '../protocol/control-api.js';
import { ControlError, PROTOCOL_VERSION } from '../protocol/json-rpc.js';
import type { DataPlaneSettings } from '../protocol/worker-messages.js';
import type { Rule, RuleRequest } from '../rules/rule.js';
import { validateRule } from '../rules/validate-rule.js';
import type { Account } from '../sys/privileges.js';
import { niceOf } from '../sys/process-nice.js';
import { hasOwnFilter, seccompStatus } from '../sys/seccomp.js';
import { notifySystemd } from '../sys/systemd-notify.js';
import type { ConfigFile, ConfigSettings } from './config-file.js';
import { ConfigService } from './config-service.js';
import { ControlServer, type MethodHandler } from './control-server.js';
import { CounterStore } from './counter-store.js';
import { claimSocketPath } from './socket-path.js';
import { forgetRule, tryDenied } from './fault-injection.js';
import { InterfaceMonitor } from './interface-monitor.js';
import type { MetricsAddress } from './metrics-address.js';
import { MetricsExposition } from './metrics-exposition.js';
import { MetricsServer } from './metrics-server.js';
import { RuleActivation, type LinkChange } from './rule-activation.js';
import { XdpPaths } from './xdp-activation.js';
import { hostXdp } from './xdp-system.js';
import type { StoredRule } from './rule-store.js';
import { clientCause, linkCause, signalCause } from './rule-events.js';
import { RuleTable } from './rule-table.js';
import { clientOf, SupervisorEvents } from './supervisor-events.js';
import { SystemSockets } from './system-sockets.js';
import { interfaceStatistics } from './interface-statistics.js';
import { StatsCollector, type CounterSample } from './stats-collector.js';
import { TraceService } from './trace-service.js';
import { ruleView, statsView } from './views.js';
import { WorkerPool, type WorkerSlot } from './worker-pool.js';

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
  /** The nice value each worker gives its packet thread (--worker-nice). */
  workerNice: number;
  logLevel: string;
  logFormat: 'json' | 'text';
  log: Logger;
  version: string;
  settings: DataPlaneSettings;
  /** The config file (--config), already read and checked; its path for reloads. */
  config: ConfigFile | undefined;
  configPath: string | undefined;
  /** Where runtime rules are kept across restarts (--state-directory). */
  stateDirectory: string | undefined;
  /** The control socket's file mode, and its group (undefined: mcrd's own). */
  socketAccess: { mode: number; gid: number | undefined };
  /** What a (reloaded) file's settings change that needs a restart; applies what can change now. */
  applySettings: (settings: ConfigSettings) => string[];
  /** Where to serve Prometheus metrics (--metrics-listen, metrics.listen); undefined: nowhere. */
  metrics?: MetricsAddress | undefined;
}

const WORKER_START_TIMEOUT_MS = 10000;
/** How often the counters are sampled for rates (a rate covers the last interval or so). */
const SAMPLE_INTERVAL_MS = 1000;

/**
 * mcrd's supervisor: the rule table, every privileged socket, the workers and the control
 * socket. It never touches a packet. The work is done by its parts (RuleTable and
 * RuleActivation for rules and sockets, ConfigService for files, WorkerPool for workers); this
 * class starts and stops them and answers the control methods.
 */
export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly log: Logger;
  private readonly interfaces: InterfaceMonitor;
  private readonly sockets: SystemSockets;
  private readonly activation: RuleActivation;
  private readonly table: RuleTable;
  private readonly config: ConfigService;
  private readonly pool: WorkerPool;
  private readonly events: SupervisorEvents;
  private readonly counters: CounterStore;
  private readonly samples = new StatsCollector();
  private sampleTimer: NodeJS.Timeout | undefined;
  private readonly traces: TraceService;
  private server: ControlServer | undefined;
  private metrics: MetricsServer | undefined;
  private readonly startedAt = Date.now();
  /** The supervisor's own seccomp state: filters it has, its workers inherit (see hasOwnFilter). */
  private readonly seccomp = seccompStatus();

  private constructor(options: SupervisorOptions) {
    this.options = options;
    this.log = options.log;
    // First: it is the one part here that can fail, and it holds nothing else yet.
    this.counters = new CounterStore(options.workers, options.log);
    this.sockets = new SystemSockets(
      options.log,
      options.workers,
      options.fanout,
      options.qdiscBypass,
      options.settings.ringBytes,
    );
    this.interfaces = new InterfaceMonitor(options.log);
    this.events = new SupervisorEvents({
      log: options.log,
      rules: () => this.table.list(),
      view: (id) => this.activation.view(id),
    });
    this.pool = new WorkerPool({
      count: options.workers,
      cpus: options.cpus,
      account: options.account,
      expectedRulesHash: () => this.activation.expectedHash(),
      resyncRules: (id) => this.activation.sendRules(id),
      inputHandedOver: (id, name) => this.activation.inputHandedOver(id, name),
      entry: options.workerEntry,
      nice: options.workerNice,
      logLevel: options.logLevel,
      logFormat: options.logFormat,
      settings: options.settings,
      counterRegion: (id) => this.counters.fd(id),
      log: options.log,
      events: this.events.workers,
      sync: (id) => {
        this.activation.syncWorker(id);
        const slot = this.pool.slots[id];
        if (slot) this.traces.workerStarted(id, slot.process);
      },
    });
    this.activation = new RuleActivation({
      links: this.interfaces,
      counters: this.counters,
      sockets: this.sockets,
      workers: {
        ids: () => this.pool.slots.map((s) => s.id),
        send: (id, m, fds) => this.pool.send(id, m, fds),
      },
      log: options.log,
      ringBytes: options.settings.ringBytes,
      xdp: new XdpPaths(hostXdp(), this.interfaces, options.log),
    });
    this.table = new RuleTable({
      activation: this.activation,
      links: this.interfaces,
      log: options.log,
      stateDirectory: options.stateDirectory,
      events: this.events.rules,
    });
    this.config = new ConfigService({
      table: this.table,
      log: options.log,
      configPath: options.configPath,
      stateDirectory: options.stateDirectory,
      applySettings: options.applySettings,
      events: this.events.rules,
    });
    this.traces = new TraceService({
      findRule: (selector) => this.findRule(selector),
      isInput: (name) => this.table.list().some(({ rule }) => rule.inputInterface === name),
      xdpRules: (name) =>
        this.table
          .list()
          .filter(({ rule }) => rule.inputInterface === name && this.activation.view(rule.id).path === 'xdp')
          .map(({ rule }) => rule),
      workers: () => this.pool.slots.map((slot) => ({ id: slot.id, process: slot.process })),
      log: options.log,
    });
    this.followInterfaces();
  }

  static async start(options: SupervisorOptions): Promise<Supervisor> {
    // Refuse early, before any worker or socket exists, if another mcrd serves this path.
    await claimSocketPath(options.socketPath);
    // Bound before any worker starts, so an address in use stops mcrd with nothing to undo;
    // scrapes before the rules are loaded are answered 503.
    let serving: Supervisor | undefined;
    const metrics =
      options.metrics === undefined
        ? undefined
        : await MetricsServer.listen(
            options.metrics,
            new MetricsExposition({
              version: options.version,
              stats: () => {
                if (!serving) throw new Error('mcrd is still starting');
                return serving.stats();
              },
            }),
            options.log,
          );
    let supervisor: Supervisor;
    try {
      supervisor = new Supervisor(options);
    } catch (err) {
      await metrics?.close();
      throw err;
    }
    supervisor.metrics = metrics;
    try {
      await supervisor.interfaces.ready;
      await supervisor.pool.ready(WORKER_START_TIMEOUT_MS);
      supervisor.events.rules.atStart(options.configPath, options.stateDirectory, () =>
        supervisor.config.loadAtStart(options.config),
      );
      serving = supervisor;
      supervisor.server = await ControlServer.listen(options.socketPath, supervisor.handlers(), options.log);
      supervisor.setSocketAccess();
      supervisor.events.start();
    } catch (err) {
      supervisor.events.stop();
      await metrics?.close();
      await supervisor.pool.stop(1000);
      supervisor.interfaces.close();
      supervisor.activation.close();
      supervisor.sockets.closeAll();
      supervisor.counters.close();
      throw err;
    }
    supervisor.sampleTimer = setInterval(() => {
      const sample = supervisor.sample();
      supervisor.samples.record(sample);
      supervisor.events.sampled(sample.rules);
    }, SAMPLE_INTERVAL_MS);
    supervisor.sampleTimer.unref();
    const rules = supervisor.table.list().length;
    options.log.info(
      { socket: options.socketPath, workers: options.workers, rules, version: options.version },
      'mcrd ready',
    );
    notifySystemd(`READY=1\nSTATUS=serving ${rules} rules`);
    return supervisor;
  }

  /**
   * Members of the socket's group use mcrctl without root; other local users cannot connect. A
   * process may give its file to a group it belongs to; to any other it needs CAP_CHOWN.
   */
  private setSocketAccess(): void {
    const { socketPath, socketAccess } = this.options;
    try {
      if (socketAccess.gid !== undefined) chownSync(socketPath, -1, socketAccess.gid);
      chmodSync(socketPath, socketAccess.mode);
    } catch (err) {
      throw new ControlError(
        'E_SOCKET_ACCESS',
        `cannot give the control socket ${socketPath} mode 0${socketAccess.mode.toString(8)}${socketAccess.gid === undefined ? '' : ` and group ${socketAccess.gid}`}: ${(err as Error).message}; mcrd must belong to that group, or have CAP_CHOWN`,
      );
    }
  }

  /** SIGHUP: the config file again, only what changed applied; a bad file changes nothing. */
  reload(signal: string): void {
    try {
      this.events.rules.because(signalCause(signal, this.options.configPath ?? null), () =>
        this.config.reloadFile(),
      );
    } catch (err) {
      this.log.error({ code: (err as { code?: string }).code }, (err as Error).message);
    }
  }

  /** Stops serving, drains the workers, logs the final counters and releases every socket. */
  async stop(): Promise<void> {
    notifySystemd('STOPPING=1');
    this.events.stop();
    await this.metrics?.close();
    this.traces.close();
    await this.server?.close();
    clearInterval(this.sampleTimer);
    await this.pool.stop(3000);
    // The workers are gone: their counters are final.
    const final = this.sample();
    this.log.info(
      { rules: Object.fromEntries(final.rules), workers: final.workers.map((w) => w.counters) },
      'final counters',
    );
    this.interfaces.close();
    this.activation.close();
    this.sockets.closeAll();
    this.counters.close();
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
      ['version', (p) => this.version(p as ParamsOf<'version'>)],
      [
        'rules.add',
        (p, caller) =>
          this.events.rules.because(clientCause('control-client', clientOf(caller)), () => ({
            rule: this.addRule(p as RuleRequest),
          })),
      ],
      [
        'rules.remove',
        (p, caller) =>
          this.events.rules.because(clientCause('control-client', clientOf(caller)), () => ({
            removed: this.removeRule(p as { id?: string; name?: string }),
          })),
      ],
      ['rules.list', () => ({ rules: this.table.list().map((r) => this.ruleView(r)) })],
      ['stats.get', () => this.stats()],
      ['workers.list', () => ({ workers: this.pool.slots.map((slot) => this.workerView(slot)) })],
      ['config.show', () => ({ text: this.config.show() })],
      ['config.save', () => this.config.save()],
      [
        'config.load',
        (p, caller) => {
          const { text, source, replace } = p as ParamsOf<'config.load'>;
          return this.events.rules.because(clientCause('config-load', clientOf(caller), source), () =>
            this.config.loadText(text, source, replace === true),
          );
        },
      ],
      [
        'config.reload',
        (_p, caller) =>
          this.events.rules.because(
            clientCause('config-reload', clientOf(caller), this.options.configPath ?? null),
            () => this.config.reloadFile(),
          ),
      ],
      ['events.subscribe', (p, caller) => this.events.subscribe(p as ParamsOf<'events.subscribe'>, caller)],
      ['log.get', () => this.logLevels()],
      ['log.set', (p) => this.setLogLevel(p as ParamsOf<'log.set'>)],
      ['trace.start', (p, caller) => this.traces.start(p as TraceParams, caller)],
      ['trace.list', () => ({ traces: this.traces.list() })],
      ...(this.options.debugMethods
        ? ([
            [
              'debug.forgetRule',
              (p: unknown) => forgetRule(this.pool, this.table, p as { worker: number; id: string }),
            ],
            ['debug.tryDenied', (p: unknown) => tryDenied(this.pool, p as ParamsOf<'debug.tryDenied'>)],
          ] as const)
        : []),
    ]);
  }

  /** The daemon's versions; a client that says it speaks another protocol is told so, clearly. */
  private version(params: ParamsOf<'version'>): { version: string; protocol: number; node: string } {
    if (params.protocol !== undefined && params.protocol !== PROTOCOL_VERSION) {
      throw new ControlError(
        'E_PROTOCOL_MISMATCH',
        `${params.client ?? 'this client'} speaks control protocol ${params.protocol}, mcrd ${this.options.version} speaks ${PROTOCOL_VERSION}: use the mcrctl that comes with this mcrd`,
        { field: 'protocol', value: params.protocol },
      );
    }
    return { version: this.options.version, protocol: PROTOCOL_VERSION, node: process.version };
  }

  /**
   * Adds a rule from a control client: kept as a runtime rule (in the state directory, when mcrd
   * has one). Socket errors refuse it, so the operator learns of them.
   */
  private addRule(request: RuleRequest): RuleView {
    return this.ruleView(this.table.add(validateRule(request), 'runtime', true));
  }

  private removeRule(selector: { id?: string; name?: string }): RuleView {
    const stored = this.table.find(selector);
    const view = this.ruleView(stored);
    this.table.remove(selector);
    return view;
  }

  /** A rule by id (r-…) or name, or undefined (a trace's rule, looked up again as it runs). */
  private findRule(selector: string): Rule | undefined {
    try {
      return this.table.find(/^r-[0-9a-f]{12}$/.test(selector) ? { id: selector } : { name: selector }).rule;
    } catch {
      return undefined;
    }
  }

  private logLevels(): LogLevels {
    return { supervisor: this.log.level, workers: this.pool.logLevel };
  }

  private setLogLevel(params: ParamsOf<'log.set'>): LogLevels {
    if (params.component !== 'workers') this.log.level = params.level;
    if (params.component !== 'supervisor') this.pool.setLogLevel(params.level);
    this.log.info(this.logLevels(), 'log levels set');
    return this.logLevels();
  }

  /**
   * Every change of an interface is an event, and re-evaluates the rules, whether it is their
   * input or an output (the rule states it moves are events caused by it).
   */
  private followInterfaces(): void {
    const { interfaces, activation } = this;
    const { rules, interfaces: events } = this.events;
    const changed = (name: string, change: LinkChange): void =>
      rules.because(linkCause(name), () => activation.linkChanged(name, change));
    interfaces.on('appeared', (state) => {
      events.appeared(state);
      changed(state.name, 'appeared');
    });
    interfaces.on('vanished', (name) => {
      events.vanished(name);
      changed(name, 'vanished');
    });
    interfaces.on('link', (state) => {
      events.link(state);
      changed(state.name, 'link');
    });
    interfaces.on('addresses', (state, address, added) => {
      events.address(state, address, added);
      changed(state.name, 'addresses');
    });
    interfaces.on('mtu', (state) => {
      events.mtu(state);
      changed(state.name, 'mtu');
    });
    interfaces.on('xdpFeatures', (state) => changed(state.name, 'xdp-features'));
  }

  private ruleView(stored: StoredRule): RuleView {
    return ruleView(stored, this.activation.view(stored.rule.id));
  }

  /** Every worker's and every rule's counters now, read from the counter regions. */
  private sample(): CounterSample {
    return {
      at: performance.now(),
      workers: this.pool.slots.map((slot) => ({
        counters: this.counters.worker(slot.id),
        cpuSeconds: slot.health?.cpuSeconds ?? null,
      })),
      rules: new Map(
        this.table
          .list()
          .map(({ rule }) => [
            rule.id,
            this.activation.mergeXdp(
              rule.id,
              this.counters.rule(this.activation.counterSlots(rule.id), rule.rtp),
            ),
          ]),
      ),
    };
  }

  /** Counters and rates, read now: it waits on no worker, so a stalled one cannot hold it up. */
  private stats() {
    const now = this.sample();
    const rules = this.table.list().map((r) => this.ruleView(r));
    const interfaces = interfaceStatistics(
      this.table
        .list()
        .flatMap(({ rule }) => [
          rule.inputInterface,
          ...rule.outputs.flatMap((o) => (o.interface === undefined ? [] : [o.interface])),
        ]),
    );
    const base = this.samples.baseline(now.at);
    return statsView(now, base, this.pool.slots, (slot) => this.workerView(slot), rules, interfaces);
  }

  private workerView(slot: WorkerSlot): WorkerView {
    const { process: worker } = slot;
    return {
      id: slot.id,
      pid: worker.pid,
      state: worker.state,
      rules: this.activation.activeCount(),
      inputs: [...this.sockets.inputs()].map((i) => i.name),
      startedAt: worker.startedAt?.toISOString() ?? null,
      restarts: slot.restarts,
      resyncs: slot.resyncs,
      cpu: worker.cpu,
      user: worker.user,
      confined: this.confined(worker.pid, worker.state),
      nice: worker.pid === null || worker.state === 'stopped' ? null : (niceOf(worker.pid) ?? null),
    };
  }

  /** Read from /proc: a running worker applied its filter (or not) before it said it was ready. */
  private confined(pid: number | null, state: WorkerView['state']): boolean | null {
    if (pid === null || state !== 'running') return null;
    const status = seccompStatus(pid);
    return status ? hasOwnFilter(status, this.seccomp) : null;
  }
}
