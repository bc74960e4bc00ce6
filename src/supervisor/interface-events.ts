import { ipv4ToString } from '../packet/ipv4-address.js';
import type { EventInterface } from '../protocol/control-api.js';
import type { EventBus } from './event-bus.js';
import type { InterfaceState } from './interface-monitor.js';

/** The host's interfaces changing, as events: appeared, vanished, up, down, address, MTU. */
export class InterfaceEvents {
  private readonly bus: EventBus;
  /** Off during the first dump at start: interfaces that were there are not news. */
  private following = false;

  constructor(bus: EventBus) {
    this.bus = bus;
  }

  /** From now on every change is an event (the start-up dump is done). */
  follow(): void {
    this.following = true;
  }

  appeared(state: InterfaceState): void {
    if (!this.following) return;
    const section = interfaceSection(state);
    this.bus.publish({
      type: 'interface.appeared',
      interface: section,
      message: `${state.name} (${linkText(state)}, MTU ${state.mtu}${section.addresses.length > 0 ? `, ${section.addresses.join(' ')}` : ''})`,
    });
  }

  vanished(name: string): void {
    if (!this.following) return;
    this.bus.publish({
      type: 'interface.vanished',
      interface: { name, up: null, running: null, mtu: null, addresses: [], added: [], removed: [] },
      message: `${name} is gone`,
    });
  }

  link(state: InterfaceState): void {
    if (!this.following) return;
    this.bus.publish({
      type: state.running ? 'interface.up' : 'interface.down',
      interface: interfaceSection(state),
      message: `${state.name} ${linkText(state)}`,
    });
  }

  address(state: InterfaceState, address: number, added: boolean): void {
    if (!this.following) return;
    const text = ipv4ToString(address);
    this.bus.publish({
      type: 'interface.address',
      interface: { ...interfaceSection(state), added: added ? [text] : [], removed: added ? [] : [text] },
      message: `${state.name} ${added ? 'has' : 'lost'} ${text}`,
    });
  }

  mtu(state: InterfaceState): void {
    if (!this.following) return;
    this.bus.publish({
      type: 'interface.mtu',
      interface: interfaceSection(state),
      message: `${state.name} MTU ${state.mtu}`,
    });
  }
}

function interfaceSection(state: InterfaceState): EventInterface {
  return {
    name: state.name,
    up: state.up,
    running: state.running,
    mtu: state.mtu,
    addresses: [...state.addresses].sort((a, b) => a - b).map(ipv4ToString),
    added: [],
    removed: [],
  };
}

function linkText(state: InterfaceState): string {
  if (state.running) return 'up';
  return state.up ? 'down (no carrier)' : 'down';
}
