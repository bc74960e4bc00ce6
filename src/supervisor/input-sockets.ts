import type { Logger } from 'pino';
import { ipv4ToString } from '../packet/ipv4-address.js';
import type { Rule } from '../rules/rule.js';
import { acceptFrames, openIngressGroup, refuseFrames } from '../sys/packet-socket.js';
import { ringGeometryFor } from '../sys/rx-ring.js';
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
import type { InputSocketSet, RetiringSockets } from './system-sockets.js';
import { PortHolds } from './port-holds.js';

/** One input interface in use: its AF_PACKET sockets and the groups joined on it. */
interface InputInterface {
  name: string;
  ifindex: number;
  /** The MTU its rings were sized for. */
  mtu: number;
  /** One AF_PACKET socket per worker, bound to this interface (in one fanout group when several). */
  fds: number[];
  /** The sockets an MTU handover replaces, until every worker has handed over. */
  retiring: (RetiringSockets & { waiting: Set<number> }) | undefined;
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
  private readonly ringBytes: number;

  constructor(log: Logger, workers: number, fanout: 'hash' | 'cpu', ringBytes: number) {
    this.log = log;
    this.workers = workers;
    this.fanout = fanout;
    this.ringBytes = ringBytes;
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
        fds: this.openIngress(link, true),
        retiring: undefined,
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
   * New ingress sockets for an interface in use, with rings for its current MTU, bound and in a
   * new fanout group, refusing frames: each worker lets its new socket take frames and makes its
   * old one refuse them when it hands over (worker/input-path.ts). The old sockets are kept,
   * bound and in their group, until every worker has said it handed over (handedOver): were one
   * closed earlier, its group would shrink and send its flows to another worker's old socket,
   * while the new group sends them to this worker: relayed twice. Joins stay as they are.
   * Undefined when the interface has no sockets, or a handover of it is still under way.
   */
  reopen(link: LinkState): InputSocketSet | undefined {
    const input = this.interfaces.get(link.name);
    if (!input || input.retiring) return undefined;
    const fresh = this.openIngress(link, false);
    input.retiring = { fds: input.fds, waiting: new Set(Array.from({ length: this.workers }, (_, w) => w)) };
    input.fds = fresh;
    input.mtu = link.mtu;
    return input;
  }

  /**
   * Worker `worker` handed input `name` over. True when that was the last worker: the old
   * sockets are closed. False for anything else, a message that matches no handover included.
   */
  handedOver(name: string, worker: number): boolean {
    const retiring = this.interfaces.get(name)?.retiring;
    if (!retiring?.waiting.delete(worker) || retiring.waiting.size > 0) return false;
    for (const fd of retiring.fds) closeFd(fd);
    this.interfaces.get(name)!.retiring = undefined;
    return true;
  }

  /**
   * Does for a worker that died during a handover of input `name` what it would have done: its
   * new socket takes frames, then its old one refuses them. Its replacement then finishes the
   * handover (it reads what the old ring still holds, closes it, and says so).
   */
  switchFor(name: string, worker: number): void {
    const input = this.interfaces.get(name);
    if (!input?.retiring?.waiting.has(worker)) return;
    acceptFrames(input.fds[worker]!, name);
    refuseFrames(input.retiring.fds[worker]!, name);
  }

  closeAll(): void {
    for (const input of [...this.interfaces.values()]) this.close(input);
    this.ports.closeAll();
  }

  /**
   * One socket per worker, each ring sized for the link's MTU, in one fanout group (see
   * openIngressGroup); `accepting`: they take frames at once (a new input), else they refuse
   * them until each worker switches over (a handover). All or nothing.
   */
  private openIngress(link: LinkState, accepting: boolean): number[] {
    const geometry = ringGeometryFor(link.mtu, this.ringBytes);
    const fds = openIngressGroup(link.ifindex, link.name, this.workers, this.fanout, geometry);
    try {
      if (accepting) for (const fd of fds) acceptFrames(fd, link.name);
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
    for (const fd of input.retiring?.fds ?? []) closeFd(fd);
    for (const member of input.members) closeFd(member.fd);
    for (const member of input.sourceMembers) closeFd(member.fd);
    this.interfaces.delete(input.name);
  }
}
