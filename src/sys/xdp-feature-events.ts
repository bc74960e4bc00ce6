import { findAttribute, GenericNetlink, type GenericMessage } from './generic-netlink.js';
import { NETDEV_A_DEV_IFINDEX, NETDEV_FAMILY } from './xdp-features.js';

// The netdev family announces on its "mgmt" multicast group every device that appears, goes or
// changes its XDP features (NETDEV_CMD_DEV_*_NTF). Those changes come without any rtnetlink event
// on the device: a veth gains NDO_XMIT when its peer, perhaps in another namespace, turns GRO on.

const MGMT_GROUP = 'mgmt';
const NETDEV_CMD_DEV_ADD_NTF = 2;
const NETDEV_CMD_DEV_CHANGE_NTF = 4;

/** Notifications of XDP feature changes, on a non-blocking socket to watch for reading. */
export class XdpFeatureEvents {
  private constructor(private readonly genl: GenericNetlink) {}

  get fd(): number {
    return this.genl.fd;
  }

  /** Subscribes; undefined on a kernel without the netdev family or its group (before 6.3). */
  static open(): XdpFeatureEvents | undefined {
    // The group's id from a blocking socket's request; the notifications on a socket of their own.
    const requests = GenericNetlink.open();
    let group: number | undefined;
    try {
      group = requests.family(NETDEV_FAMILY)?.groups.get(MGMT_GROUP);
    } finally {
      requests.close();
    }
    if (group === undefined) return undefined;
    const genl = GenericNetlink.open({ nonBlocking: true });
    try {
      genl.joinGroup(group);
      return new XdpFeatureEvents(genl);
    } catch (err) {
      genl.close();
      throw err;
    }
  }

  /**
   * The devices whose XDP features may have changed since the last read; `overflow` when
   * notifications were lost (then any device may have changed).
   */
  read(): { ifindexes: number[]; overflow: boolean } {
    const { messages, overflow } = this.genl.readWaiting();
    return { ifindexes: changedDevices(messages), overflow };
  }

  close(): void {
    this.genl.close();
  }
}

/** The ifindexes that devices-added and features-changed notifications name, once each. Pure. */
export function changedDevices(messages: readonly GenericMessage[]): number[] {
  const ifindexes = new Set<number>();
  for (const message of messages) {
    if (message.command !== NETDEV_CMD_DEV_ADD_NTF && message.command !== NETDEV_CMD_DEV_CHANGE_NTF) continue;
    const at = findAttribute(message.attributes, NETDEV_A_DEV_IFINDEX);
    if (at !== undefined && at + 4 <= message.attributes.byteLength)
      ifindexes.add(message.attributes.getUint32(at, true));
  }
  return [...ifindexes];
}
