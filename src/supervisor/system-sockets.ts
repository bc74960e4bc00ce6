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
   * already bound; the old ones are closed here, the workers keep their copies until they have
   * handed over. Undefined when the interface has no sockets.
   */
  reopenInput(link: LinkState): InputSocketSet | undefined;
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

  constructor(log: Logger, workers: number, fanout: 'hash' | 'cpu', qdiscBypass: boolean) {
    this.ingress = new InputSockets(log, workers, fanout);
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
