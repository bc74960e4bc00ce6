import type { Logger } from 'pino';
import type { Rule } from '../rules/rule.js';
import { InputSockets } from './input-sockets.js';
import { closeOutputSockets, openOutputSockets, type OutputSockets } from './output-sockets.js';
import type { LinkState } from './links.js';

/** An input interface's ingress sockets: one per worker. */
export interface InputSocketSet {
  name: string;
  ifindex: number;
  mtu: number;
  fds: readonly number[];
  /** The sockets an MTU handover replaces, while some worker has not handed over yet. */
  retiring: RetiringSockets | undefined;
}

export interface RetiringSockets {
  /** One per worker, as fds was before the handover. */
  fds: readonly number[];
  /** The workers that have not handed over. */
  waiting: ReadonlySet<number>;
}

/** Opens and closes the privileged sockets: ActivationSockets for real, fakes in tests. */
export interface SocketOpener {
  /**
   * Takes a reference for one rule on its input: the interface's ingress sockets (made with its
   * first rule), the group join, the held port of a unicast input. All or nothing: on error it
   * has released what it took. Returns the interface's sockets when this call made them.
   */
  acquireInput(rule: Rule, link: LinkState): InputSocketSet | undefined;
  /** Drops a rule's reference; true when that closed the interface's ingress sockets. */
  releaseInput(rule: Rule): boolean;
  /**
   * New ingress sockets for an interface in use (its MTU grew beyond what the ring slots hold),
   * bound and refusing frames until each worker switches to its own; the old ones are kept (as
   * `retiring`) until every worker has handed over (inputHandedOver). Undefined when the
   * interface has no sockets or a handover of it is under way.
   */
  reopenInput(link: LinkState): InputSocketSet | undefined;
  /** Worker `worker` handed input `name` over; true when it was the last (the old sockets are closed). */
  inputHandedOver(name: string, worker: number): boolean;
  /** A worker died mid-handover: its new socket takes frames and its old one refuses them, as it would have done. */
  switchInputFor(name: string, worker: number): void;
  inputs(): Iterable<InputSocketSet>;
  /**
   * Opens output `index` of a rule: a connected UDP socket and, on the worker path where it
   * applies, a raw one. An XDP rule's output gets the UDP socket alone (its copies leave from
   * that socket's port).
   */
  openOutput(rule: Rule, index: number, link: LinkState | undefined, path?: 'worker' | 'xdp'): OutputSockets;
  closeOutput(sockets: OutputSockets): void;
}

/** The kernel's sockets behind rule activation: ingress, joins and port holds, and output sockets. */
export class SystemSockets implements SocketOpener {
  private readonly ingress: InputSockets;
  private readonly qdiscBypass: boolean;

  constructor(log: Logger, workers: number, fanout: 'hash' | 'cpu', qdiscBypass: boolean, ringBytes: number) {
    this.ingress = new InputSockets(log, workers, fanout, ringBytes);
    this.qdiscBypass = qdiscBypass;
  }

  acquireInput(rule: Rule, link: LinkState): InputSocketSet | undefined {
    return this.ingress.acquire(rule, link);
  }

  releaseInput(rule: Rule): boolean {
    return this.ingress.release(rule);
  }

  reopenInput(link: LinkState): InputSocketSet | undefined {
    return this.ingress.reopen(link);
  }

  inputHandedOver(name: string, worker: number): boolean {
    return this.ingress.handedOver(name, worker);
  }

  switchInputFor(name: string, worker: number): void {
    this.ingress.switchFor(name, worker);
  }

  inputs(): Iterable<InputSocketSet> {
    return this.ingress.all();
  }

  openOutput(
    rule: Rule,
    index: number,
    link: LinkState | undefined,
    path: 'worker' | 'xdp' = 'worker',
  ): OutputSockets {
    const output = rule.outputs[index]!;
    const asked = path === 'xdp' ? { ...output, mode: 'xdp' as const } : output;
    return openOutputSockets(asked, link?.ifindex, `outputs[${index}]`, this.qdiscBypass);
  }

  closeOutput(sockets: OutputSockets): void {
    closeOutputSockets(sockets);
  }

  closeAll(): void {
    this.ingress.closeAll();
  }
}
