import { AF_INET, IPPROTO_IP, IP_TOS, IP_TTL } from './constants.js';
import { allocateNative, lastErrno, libc, type NativeMemory, type Region } from './libc.js';

// struct mmsghdr on 64-bit Linux: msghdr (56 bytes) + msg_len (u32) + padding = 64.
const MMSGHDR_SIZE = 64;
const IOVEC_SIZE = 16;
const MSG_NAME = 0;
const MSG_NAMELEN = 8;
const MSG_IOV = 16;
const MSG_IOVLEN = 24;
const MSG_CONTROL = 32;
const MSG_CONTROLLEN = 40;
const MSG_LEN = 56;

// struct cmsghdr: cmsg_len (size_t) @0, cmsg_level (int) @8, cmsg_type (int) @12, data @16.
const CMSG_LEVEL = 8;
const CMSG_TYPE = 12;
const CMSG_DATA = 16;
/** CMSG_LEN(sizeof(int)): what cmsg_len says for an int option. */
const CMSG_LEN_INT = 20;
/** CMSG_SPACE(sizeof(int)): where the next control message starts. */
const CMSG_SPACE_INT = 24;
/** Per message: an IP_TTL control message, then an IP_TOS one. */
const IP_OPTIONS_CONTROL_SIZE = 2 * CMSG_SPACE_INT;

/** struct sockaddr_in: family (u16), port (u16, network order), address (u32, network order), zero. */
export const SOCKADDR_IN_SIZE = 16;

/**
 * IPv4 destinations (struct sockaddr_in) in native memory that never moves, written once, so
 * that a message can name its destination by pointer (MessageBatch.addTo) on an unconnected
 * socket: entry k costs nothing per packet but copying its address into msg_name.
 */
export class DestinationTable {
  readonly length: number;
  private readonly memory: NativeMemory;

  /** One entry per address, all with the same UDP port. Addresses are unsigned 32-bit numbers. */
  constructor(addresses: readonly number[], port: number) {
    this.length = addresses.length;
    this.memory = allocateNative(Math.max(1, addresses.length) * SOCKADDR_IN_SIZE);
    const view = new DataView(
      this.memory.bytes.buffer,
      this.memory.bytes.byteOffset,
      this.memory.bytes.byteLength,
    );
    addresses.forEach((address, k) => {
      const at = k * SOCKADDR_IN_SIZE;
      view.setUint16(at, AF_INET, true);
      view.setUint16(at + 2, port, false);
      view.setUint32(at + 4, address >>> 0, false);
    });
  }

  /** Where the entries live; entry k is at byte offset k * SOCKADDR_IN_SIZE. */
  get region(): Region {
    return this.memory.region;
  }

  free(): void {
    this.memory.free();
  }
}

/**
 * A reusable vector of messages for sendmmsg/recvmmsg, in native memory that never moves, with
 * one or two iovecs per message (two: a header from the caller's memory, then the payload).
 * Filling a message writes three 32-bit words per iovec (iov_base as two halves, iov_len): no
 * allocation and no FFI call per packet; the whole batch goes out in one call.
 *
 * Messages have no destination (msg_name NULL: the socket's connected peer) unless filled with
 * addTo, which also writes msg_name and msg_namelen. add() leaves them as they are, so a batch
 * is filled either always with add() or always with addTo().
 */
export class MessageBatch {
  readonly capacity: number;
  count = 0;
  private readonly memory: NativeMemory;
  private readonly words: Uint32Array;
  /** messagesFrom[i]: the address of message i, precomputed so a call allocates nothing. */
  private readonly messagesFrom: bigint[];
  private readonly iovWordBase: number;

  private readonly iovecsPerMessage: number;
  /** Byte offset of message 0's control area (IP options), or -1 when the batch has none. */
  private readonly controlBase: number;

  /**
   * `ipOptions`: each message gets room for an IP_TTL and an IP_TOS control message (48 bytes,
   * written once here; per packet only the values and msg_control/msg_controllen change), for
   * addWithIpOptions.
   */
  constructor(capacity: number, iovecsPerMessage: 1 | 2 = 1, ipOptions = false) {
    this.capacity = capacity;
    this.iovecsPerMessage = iovecsPerMessage;
    const iovBytes = capacity * (MMSGHDR_SIZE + IOVEC_SIZE * iovecsPerMessage);
    this.controlBase = ipOptions ? iovBytes : -1;
    this.memory = allocateNative(iovBytes + (ipOptions ? capacity * IP_OPTIONS_CONTROL_SIZE : 0));
    this.words = new Uint32Array(
      this.memory.bytes.buffer,
      this.memory.bytes.byteOffset,
      this.memory.bytes.byteLength / 4,
    );
    this.messagesFrom = Array.from({ length: capacity }, (_, i) =>
      BigInt(this.memory.address + i * MMSGHDR_SIZE),
    );
    this.iovWordBase = (capacity * MMSGHDR_SIZE) / 4;
    for (let i = 0; i < capacity; i++) {
      const m = (i * MMSGHDR_SIZE) / 4;
      const iovOffset = capacity * MMSGHDR_SIZE + i * IOVEC_SIZE * iovecsPerMessage;
      this.memory.region.writeAddress(this.words, m + MSG_IOV / 4, iovOffset);
      this.words[m + MSG_IOVLEN / 4] = iovecsPerMessage;
      if (ipOptions) {
        const c = (this.controlBase + i * IP_OPTIONS_CONTROL_SIZE) / 4;
        for (const [at, type] of [
          [c, IP_TTL],
          [c + CMSG_SPACE_INT / 4, IP_TOS],
        ] as const) {
          this.words[at] = CMSG_LEN_INT; // cmsg_len: size_t, high half stays 0
          this.words[at + CMSG_LEVEL / 4] = IPPROTO_IP;
          this.words[at + CMSG_TYPE / 4] = type;
        }
      }
    }
  }

  /**
   * Appends a message whose single iovec is the `length` bytes at `offset` in `region`. Regions
   * and offsets instead of addresses: see Region. Three word writes, no allocation.
   */
  add(region: Region, offset: number, length: number): void {
    const w = this.iovWordBase + this.count * 4;
    region.writeAddress(this.words, w, offset);
    this.words[w + 2] = length;
    this.count++;
  }

  /**
   * Like add, with per-message IP options as control messages (a batch made with ipOptions):
   * `ttl` 1-255 becomes an IP_TTL control message, 0 leaves the socket's TTL; `tos` 0-255 an
   * IP_TOS one, -1 leaves the socket's. The kernel takes either for UDP (ip_cmsg_send). Costs a
   * few word writes here; what it costs the kernel is in bench/egress-cmsg.ts.
   */
  addWithIpOptions(region: Region, offset: number, length: number, ttl: number, tos: number): void {
    if (this.controlBase < 0) throw new Error('this batch was made without room for IP options');
    const m = (this.count * MMSGHDR_SIZE) / 4;
    if (ttl === 0 && tos < 0) {
      this.words[m + MSG_CONTROLLEN / 4] = 0; // msg_control is ignored when its length is 0
    } else {
      const control = this.controlBase + this.count * IP_OPTIONS_CONTROL_SIZE;
      const c = control / 4;
      let start = 0;
      let controlLength = 0;
      if (ttl !== 0) {
        this.words[c + CMSG_DATA / 4] = ttl;
        controlLength = CMSG_SPACE_INT;
      }
      if (tos >= 0) {
        this.words[c + (CMSG_SPACE_INT + CMSG_DATA) / 4] = tos;
        if (ttl === 0) start = CMSG_SPACE_INT;
        controlLength += CMSG_SPACE_INT;
      }
      this.memory.region.writeAddress(this.words, m + MSG_CONTROL / 4, control + start);
      this.words[m + MSG_CONTROLLEN / 4] = controlLength; // size_t: the high half stays 0
    }
    this.add(region, offset, length);
  }

  /**
   * Like add, and the message goes to `destinations` entry k (the table must outlive the send).
   * Three more words than add(); for an unconnected socket.
   */
  addTo(region: Region, offset: number, length: number, destinations: DestinationTable, k: number): void {
    const m = (this.count * MMSGHDR_SIZE) / 4;
    destinations.region.writeAddress(this.words, m + MSG_NAME / 4, k * SOCKADDR_IN_SIZE);
    this.words[m + MSG_NAMELEN / 4] = SOCKADDR_IN_SIZE;
    this.add(region, offset, length);
  }

  /** Appends a two-iovec message: a header, then the payload. */
  addWithHeader(
    headers: Region,
    headerOffset: number,
    headerLength: number,
    payloads: Region,
    payloadOffset: number,
    payloadLength: number,
  ): void {
    const w = this.iovWordBase + this.count * 8;
    headers.writeAddress(this.words, w, headerOffset);
    this.words[w + 2] = headerLength;
    payloads.writeAddress(this.words, w + 4, payloadOffset);
    this.words[w + 6] = payloadLength;
    this.count++;
  }

  /** Points message i's iovec at `length` bytes at `offset` in `region` (recvmmsg buffers), set once. */
  setBuffer(index: number, region: Region, offset: number, length: number): void {
    const w = this.iovWordBase + index * 4;
    region.writeAddress(this.words, w, offset);
    this.words[w + 2] = length;
    this.words[w + 3] = 0;
  }

  /** Bytes the kernel moved for message i in the last call. */
  messageLength(index: number): number {
    return this.words[(index * MMSGHDR_SIZE + MSG_LEN) / 4]!;
  }

  /**
   * Sends messages [from, count): to the connected peer, or each to its own destination when
   * filled with addTo. Returns how many the kernel took, or -errno. One FFI call, about 20 ns
   * plus the kernel's work per message.
   */
  send(fd: number, from: number, flags: number): number {
    const n = libc.sendmmsg(fd, this.messagesFrom[from], this.count - from, flags) as number;
    return n < 0 ? -lastErrno() : n;
  }

  /** Receives up to `capacity` messages into the buffers set with setBuffer. Returns count or -errno. */
  receive(fd: number, flags: number): number {
    const n = libc.recvmmsg(fd, this.messagesFrom[0], this.capacity, flags, 0) as number;
    return n < 0 ? -lastErrno() : n;
  }

  free(): void {
    this.memory.free();
  }
}
