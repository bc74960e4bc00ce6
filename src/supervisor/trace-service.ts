import type { Logger } from 'pino';
import { ipv4ToString, parseIpv4 } from '../packet/ipv4-address.js';
import type { TraceParams, TracedPacket, TraceView } from '../protocol/control-api.js';
import { ControlError } from '../protocol/json-rpc.js';
import type { TraceRecord, TraceSelection } from '../protocol/trace.js';
import type { Rule } from '../rules/rule.js';
import { validateInterfaceName } from '../rules/validate-rule.js';
import type { ControlCaller } from './control-server.js';
import type { ControlStream } from './control-stream.js';
import type { WorkerProcess } from './worker-process.js';

/** Traces at once, running or stopping (each costs every worker a buffer and a look per frame). */
export const MAX_CONCURRENT_TRACES = 4;
export const DEFAULT_TRACE_COUNT = 20;
export const DEFAULT_TRACE_SECONDS = 30;
/** How often a rule trace checks that its rule still exists (removed by a client or a reload). */
const RULE_CHECK_MS = 250;

/** What the trace service needs of the supervisor. */
export interface TraceHost {
  /** The rule with this id or name, or undefined. */
  findRule(selector: string): Rule | undefined;
  /** Whether some rule takes its input from this interface (mcrd receives only on those). */
  isInput(interfaceName: string): boolean;
  /** The rules on this input that run on the XDP path now (their frames never reach a worker). */
  xdpRules(interfaceName: string): Rule[];
  /** The worker processes now, by worker id. */
  workers(): { id: number; process: WorkerProcess }[];
  log: Logger;
}

interface Trace {
  readonly id: number;
  readonly client: number;
  readonly selection: TraceSelection;
  readonly rule: Rule | undefined;
  readonly count: number;
  readonly timeoutSeconds: number;
  readonly dropsOnly: boolean;
  readonly startedAt: Date;
  readonly stream: ControlStream<'trace'>;
  shown: number;
  /** Workers asked to trace that have not said they stopped. */
  readonly tracing: Set<WorkerProcess>;
  readonly timers: NodeJS.Timeout[];
}

/**
 * On-demand tracing (trace.start): every worker is asked to record the frames a trace selects
 * (fanout spreads a flow's packets over the workers), and their records go to the client's
 * stream as they come. The trace ends when `count` frames were shown (in all), after its
 * timeout, when its rule is removed, when the client goes away or mcrd stops; in every case each
 * worker is told to stop, and the trace is listed (stopping) until each said it did. A worker
 * started meanwhile (a restart) is asked to trace too.
 */
export class TraceService {
  private readonly host: TraceHost;
  private readonly traces = new Map<number, Trace>();
  /** Worker processes whose trace messages are followed. */
  private readonly followed = new WeakSet<WorkerProcess>();
  private serial = 0;

  constructor(host: TraceHost) {
    this.host = host;
  }

  start(params: TraceParams, caller: ControlCaller): { stream: number; trace: TraceView } {
    const { selection, rule } = this.selectionOf(params);
    if (this.traces.size >= MAX_CONCURRENT_TRACES) {
      throw new ControlError(
        'E_TRACE_LIMIT',
        `${this.traces.size} traces run already, the most mcrd allows at once; wait for one to end (mcrctl traces lists them; each stops after its count or timeout)`,
      );
    }
    const stream = caller.openStream('trace');
    const trace: Trace = {
      id: ++this.serial,
      client: caller.client,
      selection,
      rule,
      count: params.count ?? DEFAULT_TRACE_COUNT,
      timeoutSeconds: params.timeout ?? DEFAULT_TRACE_SECONDS,
      dropsOnly: params.dropsOnly === true,
      startedAt: new Date(),
      stream,
      shown: 0,
      tracing: new Set(),
      timers: [],
    };
    this.traces.set(trace.id, trace);
    // Whoever ends the stream (this service, the client going away), the workers stop.
    stream.whenEnded(() => this.stopWorkers(trace));
    trace.timers.push(setTimeout(() => stream.end('timeout'), trace.timeoutSeconds * 1000));
    if (rule !== undefined) {
      trace.timers.push(
        setInterval(() => {
          if (this.host.findRule(rule.id) === undefined) stream.end('rule removed');
        }, RULE_CHECK_MS),
      );
    }
    for (const { id, process } of this.host.workers()) this.ask(trace, id, process, trace.count);
    this.host.log.info({ ...this.view(trace), trace: trace.id }, 'trace started');
    return { stream: stream.id, trace: this.view(trace) };
  }

  list(): TraceView[] {
    return [...this.traces.values()].map((t) => this.view(t));
  }

  /** A worker (re)started: it runs the traces still running, for what they still need. */
  workerStarted(id: number, process: WorkerProcess): void {
    for (const trace of this.traces.values()) {
      if (trace.stream.open) this.ask(trace, id, process, trace.count - trace.shown);
    }
  }

  /** mcrd stops: every trace ends. */
  close(): void {
    for (const trace of [...this.traces.values()]) trace.stream.end('mcrd stopping');
  }

  private ask(trace: Trace, workerId: number, process: WorkerProcess, count: number): void {
    this.follow(workerId, process);
    if (process.startTrace(trace.id, trace.selection, count, trace.dropsOnly)) trace.tracing.add(process);
  }

  private follow(workerId: number, process: WorkerProcess): void {
    if (this.followed.has(process)) return;
    this.followed.add(process);
    process.on('traceRecords', (id, records, missed) => this.onRecords(id, workerId, records, missed));
    process.on('traceEnded', (id) => this.onWorkerStopped(id, process));
    // A worker that exits stops tracing too (its successor is asked again, see workerStarted).
    process.once('exit', () => {
      for (const trace of [...this.traces.values()]) this.onWorkerStopped(trace.id, process);
    });
  }

  private onRecords(id: number, workerId: number, records: TraceRecord[], missed: number): void {
    const trace = this.traces.get(id);
    if (trace === undefined || !trace.stream.open) return;
    if (missed > 0) trace.stream.push({ packet: null, missed });
    for (const record of records) {
      if (trace.shown >= trace.count) break;
      trace.stream.push({ packet: this.packet(trace, workerId, record), missed: 0 });
      trace.shown++;
    }
    if (trace.shown >= trace.count) trace.stream.end('count reached');
  }

  private onWorkerStopped(id: number, process: WorkerProcess): void {
    const trace = this.traces.get(id);
    if (trace === undefined) return;
    trace.tracing.delete(process);
    if (!trace.stream.open && trace.tracing.size === 0) this.forget(trace);
  }

  private stopWorkers(trace: Trace): void {
    for (const timer of trace.timers) clearTimeout(timer);
    for (const process of trace.tracing) process.stopTrace(trace.id);
    this.host.log.info({ trace: trace.id, shown: trace.shown }, 'trace ended');
    if (trace.tracing.size === 0) this.forget(trace);
  }

  private forget(trace: Trace): void {
    this.traces.delete(trace.id);
  }

  /** The selection the workers apply, from what the client asked (each part checked). */
  private selectionOf(params: TraceParams): { selection: TraceSelection; rule: Rule | undefined } {
    if (params.rule !== undefined) {
      if (params.group !== undefined || params.port !== undefined) {
        throw new ControlError(
          'E_USAGE',
          "a rule trace takes the rule's own group and port: give no group or port with it",
        );
      }
      const rule = this.host.findRule(params.rule);
      if (rule === undefined)
        throw new ControlError(
          'E_RULE_NOT_FOUND',
          `no rule with id or name ${JSON.stringify(params.rule)} (see mcrctl list)`,
          { field: 'rule', value: params.rule },
        );
      return {
        rule,
        selection: { interface: rule.inputInterface, rule: rule.id, group: null, port: null },
      };
    }
    const name = validateInterfaceName(params.interface, 'interface');
    if (!this.host.isInput(name)) {
      throw new ControlError(
        'E_NOT_AN_INPUT',
        `no rule takes its input from ${name}, so mcrd does not receive on it: nothing to trace (see mcrctl list)`,
        { field: 'interface', value: name },
      );
    }
    let group: number | null = null;
    if (params.group !== undefined) {
      const parsed = parseIpv4(params.group);
      if (parsed === undefined) {
        throw new ControlError(
          'E_INVALID_ADDRESS',
          `group ${JSON.stringify(params.group)} is not a dotted IPv4 address`,
          {
            field: 'group',
            value: params.group,
          },
        );
      }
      group = parsed;
    }
    const port = params.port ?? null;
    if (port !== null && (port < 1 || port > 65_535)) {
      throw new ControlError('E_INVALID_PORT', `port ${port} is not a UDP port (1-65535)`, {
        field: 'port',
        value: port,
      });
    }
    return { rule: undefined, selection: { interface: name, rule: null, group, port } };
  }

  private view(trace: Trace): TraceView {
    const { selection, rule } = trace;
    return {
      id: trace.id,
      client: trace.client,
      unseen: this.unseen(trace),
      rule: rule ? { id: rule.id, name: rule.name ?? null } : null,
      interface: selection.interface,
      group: selection.group === null ? null : ipv4ToString(selection.group),
      port: selection.port,
      count: trace.count,
      timeoutSeconds: trace.timeoutSeconds,
      dropsOnly: trace.dropsOnly,
      shown: trace.shown,
      startedAt: trace.startedAt.toISOString(),
      state: trace.stream.open ? 'running' : 'stopping',
      workersTracing: trace.tracing.size,
    };
  }

  /**
   * What the trace cannot show: the frames a rule on the XDP path relays are replicated in the
   * driver and never reach a worker, so neither this trace nor any other sees them. Frames the
   * program passes on to the kernel (not its rule's, malformed, TTL expired) are traced as usual.
   */
  private unseen(trace: Trace): string | null {
    const onXdp = this.host
      .xdpRules(trace.selection.interface)
      .filter((rule) => trace.rule === undefined || rule.id === trace.rule.id);
    if (onXdp.length === 0) return null;
    const named = onXdp.map((rule) => (rule.name !== undefined ? `${rule.id} (${rule.name})` : rule.id));
    const subject =
      trace.rule !== undefined
        ? `rule ${named[0]} runs`
        : `${onXdp.length === 1 ? 'rule' : 'rules'} ${named.join(', ')} on ${trace.selection.interface} ${onXdp.length === 1 ? 'runs' : 'run'}`;
    return `${subject} on the XDP path: the frames relayed there are copied in the driver and never reach a worker, so they are not traced (mcrctl stats counts them); frames passed on to the kernel are`;
  }

  /** A worker's record, with the rule's name and outputs as the operator wrote them. */
  private packet(trace: Trace, workerId: number, record: TraceRecord): TracedPacket {
    const rule = record.rule === null ? undefined : (trace.rule ?? this.host.findRule(record.rule));
    const address = (n: number | null): string | null => (n === null ? null : ipv4ToString(n));
    return {
      time: microsecondTime(record.timeUs),
      worker: workerId,
      interface: trace.selection.interface,
      vlan: record.vlan,
      source: address(record.source),
      sourcePort: record.sourcePort,
      group: address(record.group),
      port: record.port,
      ttl: record.ttl,
      length: record.payloadLength,
      frameLength: record.frameLength,
      outcome: record.outcome,
      rule: record.rule === null ? null : { id: record.rule, name: rule?.name ?? null },
      copies: record.copies.map((copy) => {
        const output = rule?.outputs[copy.output];
        return {
          ...copy,
          destination: output ? `${ipv4ToString(output.group)}:${output.port}` : `output ${copy.output}`,
          interface: output?.interface ?? null,
        };
      }),
    };
  }
}

/** ISO 8601 with microseconds: 2026-12-01T04:12:33.123456Z. */
function microsecondTime(us: number): string {
  const ms = Math.floor(us / 1000);
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, -1)}${String(us % 1000).padStart(3, '0')}Z`;
}
