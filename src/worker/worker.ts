import type { Logger } from 'pino';
import { LAYOUT_MAGIC, REGION_BYTES } from '../protocol/counter-layout.js';
import {
  decodeSupervisorMessage,
  encodeMessage,
  type DataPlaneSettings,
  type RawEgressSpec,
  type RuleCounterSlots,
  type SupervisorMessage,
  type WorkerMessage,
  type WorkerRule,
} from '../protocol/worker-messages.js';
import { rulesetHash } from '../rules/ruleset-hash.js';
import { FdChannel } from '../sys/fd-channel.js';
import type { ReadableWatch, WatchFault } from '../sys/libc.js';
import { attemptDenied } from '../sys/seccomp.js';
import { mapSharedMemory, type SharedMemory } from '../sys/shared-memory.js';
import type { RingHistory } from '../sys/rx-ring.js';
import { setTimerSlack } from '../sys/short-sleep.js';
import { closeFd } from '../sys/socket.js';
import { ForwardingRule } from './forwarding-rule.js';
import { HostAddresses } from './host-addresses.js';
import { InputPath } from './input-path.js';
import { OutputPath } from './output-path.js';
import { ProcessHealth } from './process-health.js';
import { ReadinessLoop } from './readiness-loop.js';
import { newOutputSockets, ruleSockets } from './rule-sockets.js';
import { CounterRegion, type WorkerCounterSet } from './worker-counters.js';
import { WorkerTraces } from './worker-traces.js';

const DEFAULT_SETTINGS: DataPlaneSettings = {
  ringBytes: 4 * 1024 * 1024,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};

/**
 * How long the worker stays in its own wait loop before letting Node's event loop run: the most a
 * timer or signal waits. Shorter means more libuv wakeups, each of which allocates.
 */
const LOOP_BUDGET_MS = 5;

/** EX_SOFTWARE: the worker found itself broken (a handler that keeps throwing); a fresh one is started. */
const EXIT_BROKEN = 70;

/**
 * A worker: takes commands and descriptors from the supervisor over its channel and runs the
 * data path of every input it is given. It opens no socket itself.
 */
export class Worker {
  private readonly channel: FdChannel;
  private readonly log: Logger;
  private readonly loop: ReadinessLoop;
  private readonly watch: ReadableWatch;
  private readonly channelFd: number;
  /** What each watched descriptor is, for fault reports: the loop knows only numbers. */
  private readonly fdLabels = new Map<number, string>();
  private settings: DataPlaneSettings = DEFAULT_SETTINGS;
  /** The counter region the supervisor shares (configure), and the worker's counters in it. */
  private counterMemory: SharedMemory | undefined;
  private region: CounterRegion | undefined;
  private readonly hostAddresses = new HostAddresses();
  private readonly health = new ProcessHealth();
  private readonly inputs = new Map<string, InputPath>();
  private readonly rules = new Map<string, ForwardingRule>();
  private readonly traces = new WorkerTraces(this.inputs, {
    trySend: (message) => this.trySend(message),
    send: (message) => this.send(message),
  });
  private statsTimer: NodeJS.Timeout | undefined;
  /** Hash of the rules held, recomputed only after they change. */
  private rulesHash: string | undefined;

  constructor(channelFd: number, log: Logger) {
    this.channel = new FdChannel(channelFd);
    this.channelFd = channelFd;
    this.log = log;
    this.loop = new ReadinessLoop(LOOP_BUDGET_MS, undefined, (fault) => this.onLoopFault(fault));
    this.watch = this.loop.watch(channelFd, () => this.readChannel());
    this.send({ type: 'ready', pid: process.pid });
  }

  /**
   * A handler threw (the loop caught it). Logged against its descriptor; one that keeps throwing
   * was taken out of the loop, and a worker missing its channel or a ring is no use: it exits, and
   * the supervisor starts a fresh one.
   */
  private onLoopFault(fault: WatchFault): void {
    const source =
      fault.fd === this.channelFd ? 'supervisor channel' : (this.fdLabels.get(fault.fd) ?? 'event loop');
    this.log.error(
      { err: fault.error, fd: fault.fd, source, inARow: fault.inARow, code: 'E_WORKER_HANDLER' },
      `the ${source} handler threw`,
    );
    if (!fault.stopped) return;
    this.log.fatal(
      { fd: fault.fd, source, code: 'E_WORKER_HANDLER' },
      `the ${source} handler threw ${fault.inARow} times in a row and was stopped; exiting so the supervisor starts a fresh worker`,
    );
    this.stop(EXIT_BROKEN);
  }

  private readChannel(): void {
    for (;;) {
      const message = this.channel.receive();
      if (message === undefined) return;
      if (message === null) {
        this.log.info('supervisor closed the channel; exiting');
        this.stop(0);
        return;
      }
      this.handle(decodeSupervisorMessage(message.data), message.fds);
    }
  }

  private handle(message: SupervisorMessage, fds: number[]): void {
    // At debug level, what the supervisor asks of this worker (not the periodic traffic).
    if (message.type !== 'heartbeat')
      this.log.debug({ command: message.type, descriptors: fds.length }, 'command from the supervisor');
    try {
      switch (message.type) {
        case 'configure':
          this.mapCounters(this.oneFd(fds, message.type));
          this.settings = message.settings;
          this.applyCoalescing();
          this.restartStatsTimer();
          break;
        case 'input.attach':
          this.attachInput(message.interface, message.mtu, message.ring, this.oneFd(fds, message.type));
          break;
        case 'input.detach':
          this.detachInput(message.interface);
          break;
        case 'rule.add':
          this.addRule(message.rule, message.counters, fds);
          break;
        case 'rule.update':
          this.updateRule(message.rule, message.previous, message.counters, fds);
          break;
        case 'rule.remove':
          this.removeRule(message.id);
          break;
        case 'output.attach':
          this.attachOutput(message.ruleId, message.index, fds, message.egress);
          break;
        case 'output.detach':
          this.detachOutput(message.ruleId, message.index);
          break;
        case 'host.addresses':
          this.hostAddresses.replace(message.addresses);
          this.log.info({ addresses: this.hostAddresses.size }, 'host addresses replaced');
          break;
        case 'log.level':
          this.log.level = message.level;
          break;
        case 'heartbeat':
          this.rulesHash ??= rulesetHash([...this.rules.values()].map((r) => r.fingerprint()));
          this.send({ type: 'heartbeat', seq: message.seq, rulesHash: this.rulesHash });
          break;
        case 'rules.reset':
          for (const id of [...this.rules.keys()]) this.removeRule(id);
          break;
        case 'debug.forget':
          this.log.warn({ rule: message.id }, 'forgetting a rule on request (fault injection)');
          this.removeRule(message.id);
          break;
        case 'debug.tryDenied':
          this.log.warn(
            { operation: message.operation },
            'attempting a denied operation on request (fault injection)',
          );
          // Its outcome, the refusal's errno (or E_NOT_CONFINED), is reported as this command's error.
          throw attemptDenied(message.operation, message.pid);
        case 'trace.start':
          this.traces.start(message.trace, message.selection, message.count, message.dropsOnly);
          break;
        case 'trace.stop':
          this.traces.stop(message.trace);
          break;
        case 'shutdown':
          this.collectRingDrops();
          this.stop(0);
          break;
      }
    } catch (err) {
      for (const fd of fds) closeFd(fd);
      const e = err as Error & { code?: string };
      this.log.error({ err: e, message: message.type }, 'command failed');
      this.send({ type: 'error', code: e.code ?? 'E_WORKER', message: e.message, subject: message.type });
    }
  }

  /**
   * Maps the counter region. Its descriptor is closed here (the mapping keeps the memory); a
   * region of another layout is refused, and the worker cannot count.
   */
  private mapCounters(fd: number): void {
    if (this.counterMemory) throw new Error('configure came twice: the worker already has its counters');
    const memory = mapSharedMemory(fd, REGION_BYTES);
    closeFd(fd);
    const cells = new Float64Array(memory.buffer);
    if (cells[0] !== LAYOUT_MAGIC) {
      memory.close();
      throw new Error(`the counter region has layout ${cells[0]}, this worker counts in ${LAYOUT_MAGIC}`);
    }
    this.counterMemory = memory;
    this.region = new CounterRegion(cells);
  }

  /** The worker's counters; every command that counts comes after configure. */
  private get counters(): WorkerCounterSet {
    return this.counterRegion.worker;
  }

  private get counterRegion(): CounterRegion {
    if (!this.region) throw new Error('the supervisor has not given this worker its counters (configure)');
    return this.region;
  }

  private oneFd(fds: number[], subject: string): number {
    if (fds.length !== 1) throw new Error(`${subject} came with ${fds.length} descriptors, not 1`);
    return fds[0]!;
  }

  /** A new input, or (the worker has this interface) a handover to a new socket. */
  private attachInput(interfaceName: string, mtu: number, ring: RingHistory, fd: number): void {
    const existing = this.inputs.get(interfaceName);
    if (existing) {
      const report = existing.handOver(fd, mtu, ring);
      this.traces.inputAttached(existing);
      this.fdLabels.set(fd, `input ${interfaceName}`);
      this.log.info({ interface: interfaceName, mtu, ...report }, 'input handed over to a new socket');
      this.send({ type: 'input.handedOver', interface: interfaceName });
      return;
    }
    const input = new InputPath(
      fd,
      interfaceName,
      mtu,
      this.settings,
      this.counters,
      this.hostAddresses,
      this.loop,
      ring,
    );
    this.inputs.set(interfaceName, input);
    this.traces.inputAttached(input);
    this.fdLabels.set(fd, `input ${interfaceName}`);
    for (const rule of this.rules.values()) if (rule.inputInterface === interfaceName) input.addRule(rule);
    this.log.info({ interface: interfaceName, mtu }, 'input attached');
  }

  private detachInput(interfaceName: string): void {
    const input = this.inputs.get(interfaceName);
    if (!input) return;
    input.close();
    this.inputs.delete(interfaceName);
    this.log.info({ interface: interfaceName }, 'input detached');
  }

  /** fds: see ruleSockets. */
  private addRule(rule: WorkerRule, slots: RuleCounterSlots, fds: number[]): void {
    const sockets = ruleSockets(rule, fds);
    if (slots.outputs.length !== rule.outputs.length)
      throw new Error(
        `rule.add for ${rule.id}: ${slots.outputs.length} counter slots for ${rule.outputs.length} outputs`,
      );
    const region = this.counterRegion;
    this.removeRule(rule.id);
    const outputs: OutputPath[] = [];
    try {
      rule.outputs.forEach((spec, i) => {
        const counters = region.takeOutput(slots.outputs[i]!);
        const output = new OutputPath(spec, this.settings.batchSize, this.counters, counters);
        outputs.push(output);
        const given = sockets[i];
        if (given) output.attach(given.socketFd, given.raw);
      });
    } catch (err) {
      // handle() closes every descriptor of the message; free only the native memory here.
      for (const output of outputs) output.close(true);
      throw err;
    }
    const forwarding = new ForwardingRule(rule, outputs, region.takeRule(slots.rule));
    this.rules.set(rule.id, forwarding);
    this.rulesHash = undefined;
    this.inputs.get(rule.inputInterface)?.addRule(forwarding);
  }

  /**
   * A rule's outputs change in place, between two batches: outputs that stay keep their sockets
   * and counters, new ones start with theirs, the others are closed. Nothing queued is lost (the
   * data path flushes every batch before a message is handled). fds: see newOutputSockets.
   */
  private updateRule(rule: WorkerRule, previous: number[], slots: RuleCounterSlots, fds: number[]): void {
    const current = this.rules.get(rule.id);
    if (!current) throw new Error(`rule.update for ${rule.id}, which this worker does not hold`);
    if (slots.outputs.length !== rule.outputs.length)
      throw new Error(
        `rule.update for ${rule.id}: ${slots.outputs.length} counter slots for ${rule.outputs.length} outputs`,
      );
    const region = this.counterRegion;
    const sockets = newOutputSockets(rule, previous, fds);
    const created: OutputPath[] = [];
    let outputs: OutputPath[];
    try {
      outputs = rule.outputs.map((spec, i) => {
        const kept = previous[i]!;
        if (kept >= 0) {
          const output = current.outputs[kept];
          if (!output) throw new Error(`rule.update for ${rule.id}: no output ${kept} to keep`);
          return output;
        }
        const counters = region.takeOutput(slots.outputs[i]!);
        const output = new OutputPath(spec, this.settings.batchSize, this.counters, counters);
        created.push(output);
        const given = sockets[i];
        if (given) output.attach(given.socketFd, given.raw);
        return output;
      });
    } catch (err) {
      // handle() closes every descriptor of the message; free only the native memory here.
      for (const output of created) output.close(true);
      throw err;
    }
    const next = current.withOutputs(rule, outputs);
    const input = this.inputs.get(rule.inputInterface);
    input?.removeRule(current);
    this.rules.set(rule.id, next);
    input?.addRule(next);
    for (const output of current.outputs) if (!outputs.includes(output)) output.close();
    this.rulesHash = undefined;
  }

  private outputOf(ruleId: string, index: number): { rule: ForwardingRule; output: OutputPath } {
    const rule = this.rules.get(ruleId);
    const output = rule?.outputs[index];
    if (!rule || !output) throw new Error(`rule ${ruleId} has no output ${index}`);
    return { rule, output };
  }

  /** Gives an output sockets, or replaces the ones it has; its counters carry on. */
  private attachOutput(ruleId: string, index: number, fds: number[], egress: RawEgressSpec | null): void {
    const wanted = egress ? 2 : 1;
    if (fds.length !== wanted)
      throw new Error(`output.attach came with ${fds.length} descriptors, not ${wanted}`);
    const { rule, output } = this.outputOf(ruleId, index);
    output.attach(fds[0]!, egress ? { fd: fds[1]!, spec: egress } : undefined);
    rule.refreshLive();
    this.rulesHash = undefined;
  }

  private detachOutput(ruleId: string, index: number): void {
    const { rule, output } = this.outputOf(ruleId, index);
    output.detach();
    rule.refreshLive();
    this.rulesHash = undefined;
  }

  private removeRule(id: string): void {
    const rule = this.rules.get(id);
    if (!rule) return;
    this.inputs.get(rule.inputInterface)?.removeRule(rule);
    this.rules.delete(id);
    this.rulesHash = undefined;
    rule.close();
  }

  /** Adds the kernel's ring drops to the counters (the kernel's count resets when read). */
  private collectRingDrops(): void {
    for (const input of this.inputs.values()) input.collectRingDrops();
  }

  /**
   * Every statsIntervalMs: ring drops into the counters, RTP holes that have waited long enough
   * judged lost (off the data path), and the process's health to the supervisor.
   */
  private everyInterval(): void {
    this.collectRingDrops();
    // The monotonic clock: a wall-clock step must neither hold nor hurry the judgement.
    const now = performance.now();
    for (const rule of this.rules.values()) rule.rtp?.settle(now);
    this.send({ type: 'health', health: this.health.snapshot() });
  }

  private applyCoalescing(): void {
    const us = this.settings.coalesceUs;
    // A pause must end on time, not up to the default 50-µs slack late.
    if (us > 0) setTimerSlack(1000);
    this.loop.setCoalescing(us);
  }

  private restartStatsTimer(): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.statsTimer = setInterval(() => this.everyInterval(), this.settings.statsIntervalMs);
  }

  /** Without waiting: false when the channel is full (trace records, which can wait). */
  private trySend(message: WorkerMessage): boolean {
    try {
      return this.channel.trySend(encodeMessage(message));
    } catch (err) {
      this.log.error({ err }, 'cannot reach the supervisor; exiting');
      this.stop(1);
      return false;
    }
  }

  private send(message: WorkerMessage): void {
    try {
      this.channel.send(encodeMessage(message));
    } catch (err) {
      // The supervisor is gone: a worker without one must not keep forwarding unsupervised.
      this.log.error({ err }, 'cannot reach the supervisor; exiting');
      this.stop(1);
    }
  }

  stop(code: number): void {
    if (this.statsTimer) clearInterval(this.statsTimer);
    this.traces.close();
    for (const name of [...this.inputs.keys()]) this.detachInput(name);
    for (const id of [...this.rules.keys()]) this.removeRule(id);
    this.counterMemory?.close();
    this.watch.stop();
    this.loop.stop();
    process.exit(code);
  }
}
