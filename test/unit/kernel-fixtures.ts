// Sockets for the unit tests that drive the worker's data path against the kernel (root, in a
// private network namespace: see private-netns.ts). Not a test file itself: it only exports.
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { WorkerOutput } from '../../src/protocol/worker-messages.js';
import { EAGAIN, MSG_DONTWAIT } from '../../src/sys/constants.js';
import { allocateNative } from '../../src/sys/libc.js';
import { MessageBatch } from '../../src/sys/message-batch.js';
import { type RxRing, TP2_SLL_PKTTYPE, TP_STATUS_USER, TP_STATUS_VLAN_VALID } from '../../src/sys/rx-ring.js';

/** sll_pkttype of a frame sent to a multicast MAC address. */
export const PACKET_MULTICAST = 2;
import {
  bindIpv4,
  closeFd,
  connectIpv4,
  localPort,
  openUdpSocket,
  setBufferSize,
} from '../../src/sys/socket.js';

export const LOCALHOST = parseIpv4('127.0.0.1')!;

/** A UDP socket on 127.0.0.1 that holds everything sent to it until read (64 MiB buffer). */
export class Sink {
  readonly fd: number;
  readonly port: number;

  constructor() {
    this.fd = openUdpSocket('test sink');
    setBufferSize(this.fd, 'receive', 64 * 1024 * 1024, true);
    bindIpv4(this.fd, LOCALHOST, 0);
    this.port = localPort(this.fd);
  }

  /** A new UDP socket connected to this sink, as the supervisor would give an output. */
  connectedSocket(): number {
    const fd = openUdpSocket('test output');
    connectIpv4(fd, LOCALHOST, this.port);
    return fd;
  }

  /** Every datagram waiting, in order. */
  readAll(): Buffer[] {
    const batch = new MessageBatch(64);
    const buffers = allocateNative(64 * 65536);
    const out: Buffer[] = [];
    try {
      for (let i = 0; i < 64; i++) batch.setBuffer(i, buffers.region, i * 65536, 65536);
      for (;;) {
        const n = batch.receive(this.fd, MSG_DONTWAIT);
        if (n === -EAGAIN) return out;
        if (n < 0) throw new Error(`recvmmsg: errno ${-n}`);
        for (let i = 0; i < n; i++) {
          const at = i * 65536;
          out.push(Buffer.from(buffers.bytes.subarray(at, at + batch.messageLength(i))));
        }
      }
    } finally {
      batch.free();
      buffers.free();
    }
  }

  close(): void {
    closeFd(this.fd);
  }
}

/** An output as rule.add describes it; socket path only unless `egress` is given. */
export function workerOutput(label: string, options: Partial<WorkerOutput> = {}): WorkerOutput {
  return { label, ttl: 64, ttlFixed: false, dscp: null, attached: true, egress: null, ...options };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where the test puts each frame in its slot, as the kernel would (after header and padding). */
export const TP_MAC_AT = 80;

/**
 * Writes a frame into a ring slot as the kernel would and hands it to the reader (TP_STATUS_USER):
 * `strippedTci`, when given, is the outer tag the kernel took off (tp_vlan_tci, VLAN_VALID);
 * `pktType`, what the kernel put in sll_pkttype.
 */
export function writeSlot(
  ring: RxRing,
  slot: number,
  bytes: Uint8Array,
  strippedTci?: number,
  pktType = PACKET_MULTICAST,
): void {
  const at = slot * ring.frameSize;
  ring.bytes[at + TP2_SLL_PKTTYPE] = pktType;
  ring.bytes.set(bytes, at + TP_MAC_AT);
  ring.words[(at >>> 2) + 1] = bytes.length; // tp_len
  ring.words[(at >>> 2) + 2] = bytes.length; // tp_snaplen
  ring.halfWords[(at + 12) >>> 1] = TP_MAC_AT; // tp_mac
  ring.halfWords[(at + 24) >>> 1] = strippedTci ?? 0; // tp_vlan_tci
  Atomics.store(
    ring.words,
    at >>> 2,
    TP_STATUS_USER | (strippedTci === undefined ? 0 : TP_STATUS_VLAN_VALID),
  );
}
