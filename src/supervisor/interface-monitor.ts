import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { openInterfaceEvents, type InterfaceEvent, type InterfaceEventSource } from '../sys/netlink.js';
import { watchReadable, type ReadableWatch } from '../sys/libc.js';
import { XdpFeatureEvents } from '../sys/xdp-feature-events.js';

/** What the supervisor knows of one interface, kept current from rtnetlink. */
export interface InterfaceState {
  name: string;
  ifindex: number;
  up: boolean;
  running: boolean;
  mtu: number;
  /** IPv4 addresses, as unsigned 32-bit numbers. */
  addresses: Set<number>;
}

export interface InterfaceMonitorEvents {
  /** An interface of this name now exists (new, or recreated with another index). */
  appeared: [state: InterfaceState];
  /** It no longer exists. */
  vanished: [name: string];
  /** It went up or down (administratively or by carrier). */
  link: [state: InterfaceState];
  /** Its IPv4 addresses changed: `address` came (added) or went. */
  addresses: [state: InterfaceState, address: number, added: boolean];
  /** Its MTU changed. */
  mtu: [state: InterfaceState];
  /** Its XDP features may have changed (the netdev family said so; rtnetlink says nothing). */
  xdpFeatures: [state: InterfaceState];
}

/**
 * Follows the host's interfaces over rtnetlink: a full dump at start (and again whenever the
 * kernel says events were lost), then every change as it happens; and, where the kernel has the
 * netdev family (6.3+), changes of their XDP features.
 */
export class InterfaceMonitor extends EventEmitter<InterfaceMonitorEvents> {
  private readonly source: InterfaceEventSource;
  private readonly watch: ReadableWatch;
  private readonly features: { events: XdpFeatureEvents; watch: ReadableWatch } | undefined;
  private readonly log: Logger;
  private readonly byIndex = new Map<number, InterfaceState>();
  private readonly byName = new Map<string, InterfaceState>();
  /** During a re-dump: the indexes seen so far, to find interfaces that vanished meanwhile. */
  private dumpSeen: Set<number> | undefined;
  private readyResolve: (() => void) | undefined;
  readonly ready: Promise<void>;

  constructor(log: Logger) {
    super();
    this.log = log;
    this.source = openInterfaceEvents();
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    this.watch = watchReadable(this.source.fd, () => this.drain());
    this.features = this.followXdpFeatures();
    this.dump();
  }

  get(name: string): InterfaceState | undefined {
    return this.byName.get(name);
  }

  /** Every IPv4 address of every interface of this host (network namespace). */
  hostAddresses(): number[] {
    const all: number[] = [];
    for (const state of this.byIndex.values()) all.push(...state.addresses);
    return all;
  }

  close(): void {
    this.watch.stop();
    this.source.close();
    this.features?.watch.stop();
    this.features?.events.close();
  }

  /** Without it only XDP paths whose links change otherwise are re-evaluated; mcrd goes on. */
  private followXdpFeatures(): { events: XdpFeatureEvents; watch: ReadableWatch } | undefined {
    let events: XdpFeatureEvents | undefined;
    try {
      events = XdpFeatureEvents.open();
    } catch (err) {
      this.log.warn({ err }, 'XDP feature changes of interfaces will not be followed');
      return undefined;
    }
    if (events === undefined) return undefined;
    const source = events;
    return { events: source, watch: watchReadable(source.fd, () => this.drainFeatures(source)) };
  }

  private drainFeatures(events: XdpFeatureEvents): void {
    const { ifindexes, overflow } = events.read();
    const changed = overflow ? [...this.byIndex.keys()] : ifindexes;
    for (const ifindex of changed) {
      const state = this.byIndex.get(ifindex);
      if (state) this.emit('xdpFeatures', state);
    }
  }

  private dump(): void {
    this.dumpSeen = new Set();
    this.source.requestDump();
  }

  private drain(): void {
    for (const event of this.source.read()) this.apply(event);
  }

  private apply(event: InterfaceEvent): void {
    switch (event.kind) {
      case 'link':
        if (event.deleted) this.remove(event.ifindex);
        else this.updateLink(event.ifindex, event.name, event.up, event.running, event.mtu);
        this.dumpSeen?.add(event.ifindex);
        break;
      case 'address': {
        const state = this.byIndex.get(event.ifindex);
        if (!state) break;
        const had = state.addresses.has(event.address);
        if (event.deleted === had) {
          if (event.deleted) state.addresses.delete(event.address);
          else state.addresses.add(event.address);
          this.emit('addresses', state, event.address, !event.deleted);
        }
        break;
      }
      case 'dump-done':
        // Interfaces not in the dump are gone (their deletion happened while events were lost).
        if (this.dumpSeen)
          for (const ifindex of [...this.byIndex.keys()])
            if (!this.dumpSeen.has(ifindex)) this.remove(ifindex);
        this.dumpSeen = undefined;
        this.readyResolve?.();
        break;
      case 'overflow':
        this.log.warn('interface events were lost (netlink buffer overflow); reading the full state again');
        this.dump();
        break;
    }
  }

  private updateLink(ifindex: number, name: string, up: boolean, running: boolean, mtu: number): void {
    const known = this.byIndex.get(ifindex);
    if (known && known.name !== name) this.remove(ifindex); // renamed: the old name is gone
    const state = this.byIndex.get(ifindex);
    if (!state) {
      const fresh: InterfaceState = { name, ifindex, up, running, mtu, addresses: new Set() };
      const previous = this.byName.get(name);
      if (previous) this.remove(previous.ifindex);
      this.byIndex.set(ifindex, fresh);
      this.byName.set(name, fresh);
      this.emit('appeared', fresh);
      return;
    }
    const linkChanged = state.up !== up || state.running !== running;
    const mtuChanged = state.mtu !== mtu;
    state.up = up;
    state.running = running;
    state.mtu = mtu;
    if (linkChanged) this.emit('link', state);
    if (mtuChanged) this.emit('mtu', state);
  }

  private remove(ifindex: number): void {
    const state = this.byIndex.get(ifindex);
    if (!state) return;
    this.byIndex.delete(ifindex);
    if (this.byName.get(state.name) === state) this.byName.delete(state.name);
    this.emit('vanished', state.name);
  }
}
