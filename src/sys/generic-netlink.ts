import { EAGAIN, EINTR, ENOBUFS, MSG_DONTWAIT, MSG_TRUNC, SOCK_NONBLOCK, SOCK_RAW } from './constants.js';
import { SysError } from './errors.js';
import { allocateNative, lastErrno, libc, type NativeMemory } from './libc.js';
import { AF_NETLINK, NLMSG_DONE, NLMSG_ERROR, NLMSG_HDRLEN, NLM_F_REQUEST } from './netlink-messages.js';
import { closeFd, openSocket, setIntOption } from './socket.js';

// Generic netlink (NETLINK_GENERIC): families the kernel names at run time ("netdev", …), asked
// one request at a time, or followed through their multicast groups. Messages are an nlmsghdr, a
// genlmsghdr (command, version, reserved) and attributes, all in host order (little-endian here).

const NETLINK_GENERIC = 16;
const SOL_NETLINK = 270;
const NETLINK_ADD_MEMBERSHIP = 1;
const GENL_ID_CTRL = 0x10;
const CTRL_CMD_GETFAMILY = 3;
const CTRL_ATTR_FAMILY_ID = 1;
const CTRL_ATTR_FAMILY_NAME = 2;
const CTRL_ATTR_MCAST_GROUPS = 7;
const CTRL_ATTR_MCAST_GRP_NAME = 1;
const CTRL_ATTR_MCAST_GRP_ID = 2;
export const GENL_HDRLEN = 4;

const RECEIVE_SIZE = 8192;
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const DATA_OFFSET = MSGHDR_SIZE + IOVEC_SIZE;

/** A family's id and its multicast groups by name. */
export interface GenericFamily {
  id: number;
  groups: Map<string, number>;
}

/** One message a family sent: its command and its attributes (a view of them). */
export interface GenericMessage {
  command: number;
  attributes: DataView;
}

/** A generic netlink socket and its receive buffer. */
export class GenericNetlink {
  readonly fd: number;
  private readonly memory: NativeMemory;
  private closed = false;

  private constructor(fd: number) {
    this.fd = fd;
    this.memory = allocateNative(DATA_OFFSET + RECEIVE_SIZE);
  }

  /** A blocking socket for requests, or with `nonBlocking` one to read notifications from. */
  static open(options: { nonBlocking?: boolean } = {}): GenericNetlink {
    const type = SOCK_RAW | (options.nonBlocking === true ? SOCK_NONBLOCK : 0);
    const fd = openSocket(AF_NETLINK, type, NETLINK_GENERIC, 'generic netlink');
    try {
      // Bound now (the kernel picks the port id): an unbound socket has port id 0, the kernel's
      // own, and the kernel does not deliver its notifications to the sender's port id.
      const address = new Uint8Array(12); // sockaddr_nl: family, pad, pid 0, groups 0
      new DataView(address.buffer).setUint16(0, AF_NETLINK, true);
      if ((libc.bind(fd, address, address.byteLength) as number) < 0) {
        throw new SysError('bind(generic netlink)', lastErrno());
      }
      return new GenericNetlink(fd);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
  }

  /**
   * Sends a request and returns the reply, or undefined when the kernel answered an error. On a
   * blocking socket only: a non-blocking one may not have the reply yet.
   */
  ask(message: Uint8Array): GenericMessage | undefined {
    this.send(message);
    const n = this.receiveInto(0);
    if (n < 0) throw new SysError('recvmsg(generic netlink)', -n);
    return parseMessages(this.received(n))[0];
  }

  /** The family `name`, or undefined when this kernel has none of that name. */
  family(name: string): GenericFamily | undefined {
    const reply = this.ask(
      genlRequest(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, stringAttribute(CTRL_ATTR_FAMILY_NAME, name)),
    );
    return reply && parseFamily(reply.attributes);
  }

  /** Receives the notifications of multicast group `id` from now on. */
  joinGroup(id: number): void {
    setIntOption(this.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, id, 'NETLINK_ADD_MEMBERSHIP');
  }

  /**
   * Every message waiting (non-blocking socket); `overflow` when the kernel dropped some for want
   * of room (ENOBUFS) or one was cut.
   */
  readWaiting(): { messages: GenericMessage[]; overflow: boolean } {
    const messages: GenericMessage[] = [];
    let overflow = false;
    if (this.closed) return { messages, overflow };
    for (;;) {
      const n = this.receiveInto(MSG_DONTWAIT);
      if (n === -EAGAIN || n === 0) break;
      if (n === -ENOBUFS) {
        overflow = true; // the kernel dropped notifications; the queue holds those before and after
        continue;
      }
      if (n < 0) throw new SysError('recvmsg(generic netlink)', -n);
      if (this.flags() & MSG_TRUNC) overflow = true;
      messages.push(...parseMessages(this.received(n)));
    }
    return { messages, overflow };
  }

  /** Closes the socket. Safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.memory.free();
    closeFd(this.fd);
  }

  private send(message: Uint8Array): void {
    for (;;) {
      if ((libc.send(this.fd, message, message.byteLength, 0) as number) >= 0) return;
      const errno = lastErrno();
      if (errno !== EINTR) throw new SysError('send(generic netlink)', errno);
    }
  }

  /** recvmsg into the buffer: the bytes received (at most the buffer's size), or -errno. */
  private receiveInto(flags: number): number {
    const base = this.memory.address;
    const header = new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset, DATA_OFFSET);
    header.setBigUint64(0, 0n, true);
    header.setUint32(8, 0, true);
    header.setBigUint64(16, BigInt(base + MSGHDR_SIZE), true);
    header.setBigUint64(24, 1n, true);
    header.setBigUint64(32, 0n, true);
    header.setBigUint64(40, 0n, true);
    header.setInt32(48, 0, true);
    header.setBigUint64(MSGHDR_SIZE, BigInt(base + DATA_OFFSET), true);
    header.setBigUint64(MSGHDR_SIZE + 8, BigInt(RECEIVE_SIZE), true);
    for (;;) {
      const n = libc.recvmsg(this.fd, base, flags) as number;
      if (n >= 0) return Math.min(n, RECEIVE_SIZE);
      const errno = lastErrno();
      if (errno !== EINTR) return -errno;
    }
  }

  private flags(): number {
    return new DataView(this.memory.bytes.buffer, this.memory.bytes.byteOffset, DATA_OFFSET).getInt32(
      48,
      true,
    );
  }

  private received(n: number): Uint8Array {
    return this.memory.bytes.subarray(DATA_OFFSET, DATA_OFFSET + n);
  }
}

/** The generic netlink messages of one datagram (errors and dump ends left out). Pure. */
export function parseMessages(bytes: Uint8Array): GenericMessage[] {
  const messages: GenericMessage[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  while (at + NLMSG_HDRLEN + GENL_HDRLEN <= bytes.byteLength) {
    const length = view.getUint32(at, true);
    if (length < NLMSG_HDRLEN || at + length > bytes.byteLength) break;
    const type = view.getUint16(at + 4, true);
    if (type !== NLMSG_ERROR && type !== NLMSG_DONE && length >= NLMSG_HDRLEN + GENL_HDRLEN) {
      const start = at + NLMSG_HDRLEN + GENL_HDRLEN;
      messages.push({
        command: bytes[at + NLMSG_HDRLEN]!,
        attributes: new DataView(bytes.buffer, bytes.byteOffset + start, length - NLMSG_HDRLEN - GENL_HDRLEN),
      });
    }
    at += (length + 3) & ~3;
  }
  return messages;
}

/** A family's id and multicast groups from the controller's reply attributes. Pure. */
export function parseFamily(attributes: DataView): GenericFamily | undefined {
  const id = findAttribute(attributes, CTRL_ATTR_FAMILY_ID);
  if (id === undefined) return undefined;
  const groups = new Map<string, number>();
  const list = nestedAttribute(attributes, CTRL_ATTR_MCAST_GROUPS);
  if (list !== undefined) {
    for (const group of eachAttribute(list)) {
      const name = findAttribute(group.value, CTRL_ATTR_MCAST_GRP_NAME);
      const groupId = findAttribute(group.value, CTRL_ATTR_MCAST_GRP_ID);
      if (name === undefined || groupId === undefined) continue;
      const text = new Uint8Array(
        group.value.buffer,
        group.value.byteOffset + name,
        group.value.byteLength - name,
      );
      const end = text.indexOf(0);
      groups.set(
        new TextDecoder().decode(text.subarray(0, end < 0 ? text.byteLength : end)),
        group.value.getUint32(groupId, true),
      );
    }
  }
  return { id: attributes.getUint16(id, true), groups };
}

/** A request to family `type`: `command`, version 1, and the attributes. */
export function genlRequest(type: number, command: number, ...attributes: Uint8Array[]): Uint8Array {
  const size = attributes.reduce((n, a) => n + a.byteLength, NLMSG_HDRLEN + GENL_HDRLEN);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, size, true);
  view.setUint16(4, type, true);
  view.setUint16(6, NLM_F_REQUEST, true);
  view.setUint32(8, 1, true);
  bytes[NLMSG_HDRLEN] = command;
  bytes[NLMSG_HDRLEN + 1] = 1; // version
  let at = NLMSG_HDRLEN + GENL_HDRLEN;
  for (const attribute of attributes) {
    bytes.set(attribute, at);
    at += attribute.byteLength;
  }
  return bytes;
}

export function stringAttribute(type: number, value: string): Uint8Array {
  const text = Buffer.from(`${value}\0`);
  const bytes = new Uint8Array(4 + ((text.byteLength + 3) & ~3));
  new DataView(bytes.buffer).setUint16(0, 4 + text.byteLength, true);
  new DataView(bytes.buffer).setUint16(2, type, true);
  bytes.set(text, 4);
  return bytes;
}

export function u32Attribute(type: number, value: number): Uint8Array {
  const bytes = new Uint8Array(8);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, 8, true);
  view.setUint16(2, type, true);
  view.setUint32(4, value >>> 0, true);
  return bytes;
}

/** The attributes of `view` in order: each one's type (nested and byte-order flags cleared) and payload. */
export function* eachAttribute(view: DataView): Generator<{ type: number; value: DataView }> {
  let at = 0;
  while (at + 4 <= view.byteLength) {
    const length = view.getUint16(at, true);
    if (length < 4 || at + length > view.byteLength) return;
    yield {
      type: view.getUint16(at + 2, true) & 0x3fff,
      value: new DataView(view.buffer, view.byteOffset + at + 4, length - 4),
    };
    at += (length + 3) & ~3;
  }
}

/** The offset of attribute `type`'s payload in `view`, if it has one of at least 2 bytes. */
export function findAttribute(view: DataView, type: number): number | undefined {
  for (const attribute of eachAttribute(view)) {
    if (attribute.type === type && attribute.value.byteLength >= 2)
      return attribute.value.byteOffset - view.byteOffset;
  }
  return undefined;
}

/** The payload of attribute `type` as a view of its own (nested attributes). */
export function nestedAttribute(view: DataView, type: number): DataView | undefined {
  for (const attribute of eachAttribute(view)) if (attribute.type === type) return attribute.value;
  return undefined;
}
