import type { Logger } from 'pino';
import { ringGeometryFor } from '../sys/rx-ring.js';
import type { Links } from './links.js';
import type { WorkerLink } from './rule-activation.js';
import type { InputSocketSet, SocketOpener } from './system-sockets.js';

/**
 * What the workers hold of the inputs: a new input's sockets (one per worker), the same input on
 * new sockets when its MTU outgrows the ring slots (a handover), and everything a restarted
 * worker must hold again.
 *
 * A handover, start to end: the supervisor opens the new sockets (refusing frames, in a fanout
 * group ordered like the old one) and sends each worker its own; each worker switches its pair
 * over and finishes its old ring (worker/input-path.ts), then says input.handedOver; once every
 * worker has, the old sockets are closed. A worker that dies before it says so has its pair
 * switched by the supervisor, and its replacement gets the old socket (to count what its ring
 * still held) and then the new one. An MTU that grows again meanwhile is followed once the
 * handover under way ends.
 */
export class WorkerInputs {
  /** Inputs whose MTU grew again while a handover of them was under way. */
  private readonly grewMeanwhile = new Set<string>();

  constructor(
    private readonly sockets: SocketOpener,
    private readonly workers: WorkerLink,
    private readonly links: Links,
    private readonly ringBytes: number,
    private readonly log: Logger,
  ) {}

  /** A new input: worker `id` gets its socket, whose ring no one has read. */
  created(id: number, input: InputSocketSet): void {
    this.send(id, input, input.fds[id]!, 'fresh');
  }

  /**
   * A (re)started worker gets every input. Its process is new, but the rings are not: the worker
   * it replaces read them. Mid-handover, it finishes the handover its predecessor began.
   */
  sync(id: number): void {
    for (const input of this.sockets.inputs()) {
      if (input.retiring?.waiting.has(id)) {
        this.sockets.switchInputFor(input.name, id);
        this.send(id, input, input.retiring.fds[id]!, 'in-use');
      }
      this.send(id, input, input.fds[id]!, 'in-use');
    }
  }

  /**
   * Interface `name`'s MTU changed. A ring slot holds one frame: when the MTU outgrows the
   * slots, the input moves to sockets whose rings have larger ones.
   */
  mtuChanged(name: string): void {
    const link = this.links.get(name);
    const input = [...this.sockets.inputs()].find((i) => i.name === name);
    if (!link || !input) return;
    const slot = (mtu: number): number => ringGeometryFor(mtu, this.ringBytes).frameSize;
    if (slot(link.mtu) <= slot(input.mtu)) return;
    if (input.retiring) {
      this.grewMeanwhile.add(name);
      return;
    }
    const moved = this.sockets.reopenInput(link);
    if (!moved) return;
    for (const id of this.workers.ids()) this.send(id, moved, moved.fds[id]!, 'fresh');
    this.log.info({ interface: name, mtu: link.mtu }, 'input MTU grew; handing the input over to new rings');
  }

  /** Worker `id` says it handed input `name` over (already checked: it was asked to). */
  handedOver(id: number, name: string): void {
    if (!this.sockets.inputHandedOver(name, id)) return;
    this.log.info({ interface: name }, 'input handed over by every worker; old sockets closed');
    if (this.grewMeanwhile.delete(name)) this.mtuChanged(name);
  }

  private send(id: number, input: InputSocketSet, fd: number, ring: 'fresh' | 'in-use'): void {
    const message = {
      type: 'input.attach',
      interface: input.name,
      ifindex: input.ifindex,
      mtu: input.mtu,
      ring,
    } as const;
    this.workers.send(id, message, [fd]);
  }
}
