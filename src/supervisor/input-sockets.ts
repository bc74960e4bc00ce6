import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import type { Rule } from '../rules/rule.js';
import { createFanoutGroup, joinFanoutGroup, openIngressSocket } from '../sys/packet-socket.js';
import {
  closeFd,
  joinGroup,
  joinSourceGroup,
  leaveGroup,
  leaveSourceGroup,
  maxMembershipsPerSocket,
  maxSourcesPerGroup,
  openUdpSocket,
} from '../sys/socket.js';
import type { LinkState } from './links.js';
import type { InputSocketSet } from './system-sockets.js';
import { PortHolds } from './port-holds.js';

/** One input interface in use: its AF_PACKET sockets and the groups joined on it. */
interface InputInterface {
  name: string;
  ifindex: number;
  /** The MTU its rings were sized for. */
  mtu: number;
  /** One AF_PACKET socket per worker, bound to this interface (in one fanout group when several). */
  fds: number[];
  /** Rules using this interface. */
  rules: number;
  /** group → rules on it and the membership socket holding the join. */
  groups: Map<number, { rules: number; member: MembershipSocket }>;
  members: MembershipSocket[];
  /** "group source" → rules on that (S,G) and the socket holding the source join. */
  sourceGroups: Map<string, { rules: number; member: SourceMembershipSocket }>;
  sourceMembers: SourceMembershipSocket[];
}

interface MembershipSocket {
  fd: number;
  groups: number;
}

/** A socket holding source-specific joins: per group, how many sources it has joined. */
interface SourceMembershipSocket {
  fd: number;
  sourcesByGroup: Map<number, number>;
}

/**
 * The supervisor's ingress sockets, one set per input interface, created with its first rule and
 * closed with its last. It also holds the IGMP joins: the kernel only delivers a group to an
 * interface (and a switch or NIC filter only passes it) when some socket is a member. A socket
 * holds at most net.ipv4.igmp_max_memberships groups, so joins are spread over several sockets.
 * A source-specific input joins (S,G) on sockets of their own (a socket in a group for any
 * source cannot also name one), each holding at most igmp_max_memberships groups and
 * net.ipv4.igmp_max_msf sources per group.
 * A unicast input holds its port instead (PortHolds), so the host stays quiet.
 */
export class InputSockets {
  private readonly interfaces = new Map<string, InputInterface>();
  private readonly maxMemberships = maxMembershipsPerSocket();
  private readonly maxSources = maxSourcesPerGroup();
  private readonly ports: PortHolds;
  private readonly log: Logger;
  private readonly workers: number;
  private readonly fanout: 'hash' | 'cpu';

  constructor(log: Logger, workers: number, fanout: 'hash' | 'cpu') {
    this.log = log;
    this.workers = workers;
    this.fanout = fanout;
    this.ports = new PortHolds(log);
  }

  all(): IterableIterator<InputSocketSet> {
    return this.interfaces.values();
  }

  /**
   * Takes a reference for one rule on its input. All or nothing: on error, what this call took
   * is released. Returns the interface's sockets when this call made them (they must be handed to
   * the workers).
   */
  acquire(rule: Rule, link: LinkState): InputSocketSet | undefined {
    let input = this.interfaces.get(rule.inputInterface);
    const created = input === undefined;
    if (!input) {
      input = {
        name: link.name,
        ifindex: link.ifindex,
        mtu: link.mtu,
        fds: this.openIngress(link),
        rules: 0,
        groups: new Map(),
        members: [],
        sourceGroups: new Map(),
        sourceMembers: [],
      };
      this.interfaces.set(input.name, input);
    }
    try {
      if (rule.unicastInput) this.ports.hold(rule.inputGroup, rule.inputPort);
      else if (rule.inputSource !== 0) this.joinSource(input, rule.inputGroup, rule.inputSource);
      else this.join(input, rule.inputGroup);
    } catch (err) {
      if (created) this.close(input);
      throw err;
    }
    input.rules++;
    return created ? input : undefined;
  }

  /** Drops one rule's reference. Returns true when the interface has no rules left and was closed. */
  release(rule: Rule): boolean {
    const input = this.interfaces.get(rule.inputInterface);
    if (!input) return false;
    if (rule.unicastInput) this.ports.release(rule.inputGroup, rule.inputPort);
    else if (rule.inputSource !== 0) this.leaveSource(input, rule.inputGroup, rule.inputSource);
    else this.leave(input, rule.inputGroup);
    input.rules--;
    if (input.rules > 0) return false;
    this.close(input);
    return true;
  }

  /**
   * New ingress sockets for an interface in use, sized for its current MTU, bound (in a new
   * fanout group) before the old ones are closed: from here until each worker closes its copy of
   * an old socket, frames reach both, and the worker skips the doubles. Joins stay as they are.
   */
  reopen(link: LinkState): InputSocketSet | undefined {
    const input = this.interfaces.get(link.name);
    if (!input) return undefined;
    const fresh = this.openIngress(link);
    for (const fd of input.fds) closeFd(fd);
    input.fds = fresh;
    input.mtu = link.mtu;
    return input;
  }

  closeAll(): void {
    for (const input of [...this.interfaces.values()]) this.close(input);
    this.ports.closeAll();
  }

  private openIngress(link: LinkState): number[] {
    const fds: number[] = [];
    try {
      let group = 0;
      for (let w = 0; w < this.workers; w++) {
        fds.push(openIngressSocket(link.ifindex, link.name));
        if (this.workers === 1) continue;
        if (w === 0) group = createFanoutGroup(fds[0]!, this.fanout);
        else joinFanoutGroup(fds[w]!, group, this.fanout);
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

  private joinSource(input: InputInterface, group: number, source: number): void {
    const key = `${group} ${source}`;
    const existing = input.sourceGroups.get(key);
    if (existing) {
      existing.rules++;
      return;
    }
    let member = input.sourceMembers.find((m) => this.hasRoomForSource(m, group));
    if (!member) {
      member = { fd: openUdpSocket(`source membership ${input.name}`), sourcesByGroup: new Map() };
      input.sourceMembers.push(member);
    }
    joinSourceGroup(member.fd, group, source, input.ifindex);
    member.sourcesByGroup.set(group, (member.sourcesByGroup.get(group) ?? 0) + 1);
    input.sourceGroups.set(key, { rules: 1, member });
    this.log.debug(
      { interface: input.name, group: ipv4ToString(group), source: ipv4ToString(source) },
      'joined group for one source',
    );
  }

  private hasRoomForSource(member: SourceMembershipSocket, group: number): boolean {
    const sources = member.sourcesByGroup.get(group);
    if (sources !== undefined) return sources < this.maxSources;
    return member.sourcesByGroup.size < this.maxMemberships;
  }

  private leaveSource(input: InputInterface, group: number, source: number): void {
    const key = `${group} ${source}`;
    const entry = input.sourceGroups.get(key);
    if (!entry) return;
    if (--entry.rules > 0) return;
    input.sourceGroups.delete(key);
    try {
      leaveSourceGroup(entry.member.fd, group, source, input.ifindex);
    } catch (err) {
      // As for leave(): a vanished interface has ended the membership already.
      this.log.warn(
        { err, interface: input.name, group: ipv4ToString(group), source: ipv4ToString(source) },
        'leaving group for one source failed',
      );
    }
    const left = (entry.member.sourcesByGroup.get(group) ?? 1) - 1;
    if (left > 0) entry.member.sourcesByGroup.set(group, left);
    else entry.member.sourcesByGroup.delete(group);
  }

  private close(input: InputInterface): void {
    for (const fd of input.fds) closeFd(fd);
    for (const member of input.members) closeFd(member.fd);
    for (const member of input.sourceMembers) closeFd(member.fd);
    this.interfaces.delete(input.name);
  }
}
