import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import { joinFanoutGroup, openIngressSocket } from '../sys/packet-socket.js';
import { closeFd, joinGroup, leaveGroup, maxMembershipsPerSocket, openUdpSocket } from '../sys/socket.js';

/** One input interface in use: its AF_PACKET socket and the groups joined on it. */
export interface InputInterface {
  name: string;
  ifindex: number;
  mtu: number;
  /** One AF_PACKET socket per worker, bound to this interface (in one fanout group when several). */
  fds: number[];
  /** Rules using this interface. */
  rules: number;
  /** group → rules on it and the membership socket holding the join. */
  groups: Map<number, { rules: number; member: MembershipSocket }>;
  members: MembershipSocket[];
}

interface MembershipSocket {
  fd: number;
  groups: number;
}

/**
 * The supervisor's ingress sockets, one per input interface, created with its first rule and
 * closed with its last. It also holds the IGMP joins: the kernel only delivers a group to an
 * interface (and a switch or NIC filter only passes it) when some socket is a member. A socket
 * holds at most net.ipv4.igmp_max_memberships groups, so joins are spread over several sockets.
 */
export class InputSockets {
  private readonly interfaces = new Map<string, InputInterface>();
  private readonly maxMemberships = maxMembershipsPerSocket();
  private readonly log: Logger;
  private readonly workers: number;
  private readonly fanout: 'hash' | 'cpu';

  constructor(log: Logger, workers: number, fanout: 'hash' | 'cpu') {
    this.log = log;
    this.workers = workers;
    this.fanout = fanout;
  }

  get(name: string): InputInterface | undefined {
    return this.interfaces.get(name);
  }

  all(): IterableIterator<InputInterface> {
    return this.interfaces.values();
  }

  /**
   * Takes a reference for one rule on (interface, group). Returns the interface and whether its
   * socket is new (and so must be handed to the worker).
   */
  acquire(
    name: string,
    ifindex: number,
    mtu: number,
    group: number,
    join: boolean,
  ): { input: InputInterface; created: boolean } {
    let input = this.interfaces.get(name);
    const created = input === undefined;
    if (!input) {
      input = {
        name,
        ifindex,
        mtu,
        fds: this.openIngress(name, ifindex),
        rules: 0,
        groups: new Map(),
        members: [],
      };
      this.interfaces.set(name, input);
    }
    try {
      if (join) this.join(input, group);
    } catch (err) {
      if (created) this.close(input);
      throw err;
    }
    input.rules++;
    return { input, created };
  }

  /** Drops one rule's reference. Returns true when the interface has no rules left and was closed. */
  release(name: string, group: number, joined: boolean): boolean {
    const input = this.interfaces.get(name);
    if (!input) return false;
    if (joined) this.leave(input, group);
    input.rules--;
    if (input.rules > 0) return false;
    this.close(input);
    return true;
  }

  closeAll(): void {
    for (const input of [...this.interfaces.values()]) this.close(input);
  }

  private openIngress(name: string, ifindex: number): number[] {
    const fds: number[] = [];
    // An id per (process, interface): fanout groups are matched by id within the network namespace.
    const groupId = (process.pid * 31 + ifindex) & 0xffff;
    try {
      for (let w = 0; w < this.workers; w++) {
        fds.push(openIngressSocket(ifindex, name));
        if (this.workers > 1) joinFanoutGroup(fds[w]!, groupId, this.fanout);
      }
      return fds;
    } catch (err) {
      for (const fd of fds) closeFd(fd);
      throw err;
    }
  }

  private join(input: InputInterface, group: number): void {
    const existing = input.groups.get(group);
    if (existing) {
      existing.rules++;
      return;
    }
    let member = input.members.find((m) => m.groups < this.maxMemberships);
    if (!member) {
      member = { fd: openUdpSocket(`membership ${input.name}`), groups: 0 };
      input.members.push(member);
    }
    joinGroup(member.fd, group, input.ifindex);
    member.groups++;
    input.groups.set(group, { rules: 1, member });
    this.log.debug({ interface: input.name, group: ipv4ToString(group) }, 'joined group');
  }

  private leave(input: InputInterface, group: number): void {
    const entry = input.groups.get(group);
    if (!entry) return;
    if (--entry.rules > 0) return;
    input.groups.delete(group);
    try {
      leaveGroup(entry.member.fd, group, input.ifindex);
    } catch (err) {
      // The interface may be gone, which ends the membership anyway; say so and carry on.
      this.log.warn({ err, interface: input.name, group: ipv4ToString(group) }, 'leaving group failed');
    }
    entry.member.groups--;
  }

  private close(input: InputInterface): void {
    for (const fd of input.fds) closeFd(fd);
    for (const member of input.members) closeFd(member.fd);
    this.interfaces.delete(input.name);
  }
}
