import type { Logger } from 'pino';
import type { Rule } from '../rules/rule.js';
import { InputSockets } from './input-sockets.js';
import { closeOutputSockets, openOutputSockets, type OutputSockets } from './output-sockets.js';
import type { InputSocketSet, LinkState, SocketOpener } from './rule-activation.js';

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

  openOutput(rule: Rule, index: number, link: LinkState | undefined): OutputSockets {
    return openOutputSockets(rule.outputs[index]!, link?.ifindex, `outputs[${index}]`, this.qdiscBypass);
  }

  closeOutput(sockets: OutputSockets): void {
    closeOutputSockets(sockets);
  }

  closeAll(): void {
    this.ingress.closeAll();
  }
}
