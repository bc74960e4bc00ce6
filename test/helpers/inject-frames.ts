// Sends hand-made malformed Ethernet/IPv4/UDP frames out of an interface, for the e2e tests of
// hostile input. Run inside a namespace: node inject-frames.js IFNAME GROUP PORT KIND COUNT
import { buildUdpFrame, IPV4_FLAG_MF } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openFrameSender, sendFrame } from '../../src/sys/packet-socket.js';

export const MALFORMED_KINDS = {
  /** IPv4 total length larger than the frame: the frame was cut short. */
  truncated: 'bad_ipv4_total_length',
  /** IHL below the minimum of 5 words. */
  'bad-header-length': 'bad_ipv4_header_length',
  /** More-fragments set: only the first piece of a datagram. */
  fragment: 'fragment',
  'bad-checksum': 'bad_ipv4_checksum',
  /** UDP length larger than what the IP packet carries. */
  'bad-udp-length': 'bad_udp_length',
} as const;
export type MalformedKind = keyof typeof MALFORMED_KINDS;

function frameOf(kind: MalformedKind, group: number, port: number, seq: number): Uint8Array {
  const base = {
    src: parseIpv4('10.90.1.1')!,
    dst: group,
    srcPort: 40000,
    dstPort: port,
    payload: 100,
    id: seq & 0xffff,
  };
  switch (kind) {
    case 'truncated':
      return buildUdpFrame(base).subarray(0, 14 + 20 + 8 + 40);
    case 'bad-header-length': {
      const f = buildUdpFrame(base);
      f[14] = 0x44;
      return f;
    }
    case 'fragment':
      return buildUdpFrame({ ...base, flags: IPV4_FLAG_MF });
    case 'bad-checksum': {
      const f = buildUdpFrame(base);
      f[14 + 10] = f[14 + 10]! ^ 0xff;
      return f;
    }
    case 'bad-udp-length': {
      const f = buildUdpFrame(base);
      const udpLength = 14 + 20 + 4;
      f[udpLength] = 0x0f;
      f[udpLength + 1] = 0xff;
      return f;
    }
  }
}

async function main(): Promise<void> {
  const [ifname, groupText, portText, kind, countText] = process.argv.slice(2);
  const ifindex = interfaceIndex(ifname ?? '');
  const group = parseIpv4(groupText ?? '');
  if (ifindex === undefined || group === undefined || !(kind! in MALFORMED_KINDS)) {
    throw new Error('usage: inject-frames IFNAME GROUP PORT KIND COUNT');
  }
  const fd = openFrameSender(ifindex, ifname!);
  const count = Number(countText);
  for (let i = 0; i < count; i++) {
    sendFrame(fd, frameOf(kind as MalformedKind, group, Number(portText), i));
    // Spread over time so they interleave with a good flow rather than arrive as one burst.
    if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));
  }
}

if (process.argv[1]?.endsWith('inject-frames.js')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
