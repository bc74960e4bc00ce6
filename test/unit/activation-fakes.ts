import assert from 'node:assert/strict';
import pino from 'pino';
import type { CounterSlot } from '../../src/protocol/counter-layout.js';
import type { RuleCounterSlots, SupervisorMessage } from '../../src/protocol/worker-messages.js';
import type { Rule, RuleRequest } from '../../src/rules/rule.js';
import { validateRule } from '../../src/rules/validate-rule.js';
import type { OutputSockets } from '../../src/supervisor/output-sockets.js';
import type { LinkState } from '../../src/supervisor/links.js';
import { RuleActivation, type CounterSlots, type WorkerLink } from '../../src/supervisor/rule-activation.js';
import type { InputSocketSet, SocketOpener } from '../../src/supervisor/system-sockets.js';
import type { XdpPaths } from '../../src/supervisor/xdp-activation.js';

// Fakes of what rule activation talks to: the interfaces, the socket opener, the workers and
// the counter slots (shared by the activation tests of both data paths).

export class FakeLinks {
  readonly links = new Map<string, LinkState & { addresses: Set<number> }>();

  add(name: string, options: { up?: boolean; address?: number | null; mtu?: number } = {}): void {
    const addresses = new Set<number>();
    if (options.address !== null) addresses.add(options.address ?? 0x0a000001 + this.links.size);
    this.links.set(name, {
      name,
      ifindex: 10 + this.links.size,
      up: options.up ?? true,
      running: options.up ?? true,
      mtu: options.mtu ?? 1500,
      addresses,
    });
  }

  get(name: string): LinkState | undefined {
    return this.links.get(name);
  }

  hostAddresses(): number[] {
    return [...this.links.values()].flatMap((l) => [...l.addresses]);
  }
}

/** Hands out fd numbers and remembers which are open, so a test can see a leak. */
export class FakeSockets implements SocketOpener {
  readonly open = new Set<number>();
  private next = 100;
  private readonly ingress = new Map<
    string,
    InputSocketSet & {
      rules: number;
      fds: number[];
      retiring: { fds: number[]; waiting: Set<number> } | undefined;
    }
  >();
  /** Per interface, the workers whose sockets the supervisor switched for them (switchInputFor). */
  readonly switchedFor: string[] = [];
  /** Interfaces on which opening an output fails. */
  readonly failingOutputs = new Set<string>();
  readonly failingInputs = new Set<string>();

  constructor(private readonly workers: number) {}

  private fd(): number {
    const fd = this.next++;
    this.open.add(fd);
    return fd;
  }

  acquireInput(rule: Rule, link: LinkState): InputSocketSet | undefined {
    if (this.failingInputs.has(link.name)) throw new Error(`cannot open ${link.name}`);
    let input = this.ingress.get(link.name);
    const created = !input;
    if (!input) {
      input = {
        name: link.name,
        ifindex: link.ifindex,
        mtu: link.mtu,
        rules: 0,
        fds: [],
        retiring: undefined,
      };
      for (let w = 0; w < this.workers; w++) input.fds.push(this.fd());
      this.ingress.set(link.name, input);
    }
    input.rules++;
    return created ? input : undefined;
  }

  releaseInput(rule: Rule): boolean {
    const input = this.ingress.get(rule.inputInterface)!;
    if (--input.rules > 0) return false;
    for (const fd of [...input.fds, ...(input.retiring?.fds ?? [])]) this.open.delete(fd);
    this.ingress.delete(rule.inputInterface);
    return true;
  }

  reopenInput(link: LinkState): InputSocketSet | undefined {
    const input = this.ingress.get(link.name);
    if (!input || input.retiring) return undefined;
    input.retiring = { fds: input.fds, waiting: new Set(input.fds.map((_, w) => w)) };
    input.fds = input.fds.map(() => this.fd());
    input.mtu = link.mtu;
    return input;
  }

  inputHandedOver(name: string, worker: number): boolean {
    const input = this.ingress.get(name);
    if (!input?.retiring?.waiting.delete(worker) || input.retiring.waiting.size > 0) return false;
    for (const fd of input.retiring.fds) this.open.delete(fd);
    input.retiring = undefined;
    return true;
  }

  switchInputFor(name: string, worker: number): void {
    this.switchedFor.push(`${name}:${worker}`);
  }

  inputs(): Iterable<InputSocketSet> {
    return this.ingress.values();
  }

  openOutput(rule: Rule, index: number, link: LinkState | undefined, path = 'worker'): OutputSockets {
    const output = rule.outputs[index]!;
    if (link && this.failingOutputs.has(link.name)) throw new Error(`cannot open ${link.name}`);
    const socketFd = this.fd();
    const raw =
      output.multicast && output.mode !== 'socket' && output.mode !== 'xdp' && path === 'worker'
        ? { fd: this.fd(), spec: { template: '00', mtu: 1500 } }
        : null;
    return { socketFd, raw };
  }

  closeOutput(sockets: OutputSockets): void {
    this.open.delete(sockets.socketFd);
    if (sockets.raw) this.open.delete(sockets.raw.fd);
  }
}

export class FakeWorkers implements WorkerLink {
  readonly sent: { id: number; message: SupervisorMessage; fds: readonly number[] }[] = [];

  constructor(private readonly count: number) {}

  ids(): number[] {
    return Array.from({ length: this.count }, (_, i) => i);
  }

  send(id: number, message: SupervisorMessage, fds: readonly number[] = []): void {
    this.sent.push({ id, message, fds });
  }

  /** Messages of one type sent since the last take(), then forgets everything. */
  take(
    type?: SupervisorMessage['type'],
  ): { id: number; message: SupervisorMessage; fds: readonly number[] }[] {
    const found = this.sent.filter((s) => type === undefined || s.message.type === type);
    this.sent.length = 0;
    return found;
  }
}

/** Counter slots as CounterStore gives them out: numbered in order, each with a fresh tag. */
export class FakeCounters implements CounterSlots {
  private next = 0;
  private tag = 1;
  /** Slots given out and not taken back, as "rule:N" and "output:N". */
  readonly held = new Set<string>();

  allocateRule(outputs: number): RuleCounterSlots {
    const rule = this.take('rule');
    return { rule, outputs: Array.from({ length: outputs }, () => this.allocateOutput()) };
  }

  allocateOutput(): CounterSlot {
    return this.take('output');
  }

  freeRule(slots: RuleCounterSlots): void {
    this.give('rule', slots.rule);
    for (const slot of slots.outputs) this.freeOutput(slot);
  }

  freeOutput(slot: CounterSlot): void {
    this.give('output', slot);
  }

  private take(kind: string): CounterSlot {
    const slot = { slot: this.next++, tag: this.tag++ };
    this.held.add(`${kind}:${slot.slot}`);
    return slot;
  }

  private give(kind: string, slot: CounterSlot): void {
    assert.ok(
      this.held.delete(`${kind}:${slot.slot}`),
      `${kind} slot ${slot.slot} freed twice or never given`,
    );
  }
}

export function setup(workers = 2, xdp?: (links: FakeLinks) => XdpPaths) {
  const links = new FakeLinks();
  const sockets = new FakeSockets(workers);
  const fake = new FakeWorkers(workers);
  const counters = new FakeCounters();
  const activation = new RuleActivation({
    links,
    sockets,
    workers: fake,
    counters,
    log: pino({ level: 'silent' }),
    ringBytes: 4 << 20,
    xdp: xdp?.(links),
  });
  return { links, sockets, workers: fake, activation, counters };
}

export function rule(request: Partial<RuleRequest> = {}): Rule {
  return validateRule({
    inputInterface: 'in0',
    inputGroup: '239.1.1.1',
    inputPort: 5000,
    outputs: [{ group: '239.2.2.2', port: 6000, interface: 'out0' }],
    ...request,
  });
}
