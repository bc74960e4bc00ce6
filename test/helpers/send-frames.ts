// Sends well-formed Ethernet[/VLAN…]/IPv4/UDP frames with probe payloads out of an interface,
// with the header fields mcrgen leaves to the kernel under the test's control (TTL, TOS, VLAN
// tags, source address). Receivers (mcrgen recv) verify the payloads as usual. Run inside a
// namespace:
//   node send-frames.js IFNAME GROUP PORT COUNT [ttl=N] [tos=N] [vlan=ID[/TPID][,ID…]] [src=A] [size=N] [stream=N]
import { wallClockUs } from '../../src/gen/clock.js';
import { buildUdpFrame, type VlanTagOptions } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { writeProbe } from '../../src/packet/probe.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import { openFrameSender, sendFrame } from '../../src/sys/packet-socket.js';

export interface FrameOptions {
  ttl?: number;
  tos?: number;
  /** Outermost first, e.g. "100" or "200/0x88a8,100". */
  vlan?: string;
  src?: string;
  size?: number;
  stream?: number;
}

/** The command-line arguments for these options, for a test to pass to the script. */
export function frameArgs(options: FrameOptions): string[] {
  return Object.entries(options).map(([key, value]) => `${key}=${String(value)}`);
}

function tagsOf(text: string | undefined): VlanTagOptions[] {
  if (!text) return [];
  return text.split(',').map((tag) => {
    const [id, tpid] = tag.split('/');
    return { id: Number(id), ...(tpid ? { tpid: Number(tpid) } : {}) };
  });
}

async function main(): Promise<void> {
  const [ifname, groupText, portText, countText, ...rest] = process.argv.slice(2);
  const options = Object.fromEntries(rest.map((r) => r.split('=') as [string, string]));
  const ifindex = interfaceIndex(ifname ?? '');
  const group = parseIpv4(groupText ?? '');
  if (ifindex === undefined || group === undefined) {
    throw new Error('usage: send-frames IFNAME GROUP PORT COUNT [ttl=N] [tos=N] [vlan=…] [src=A] [size=N]');
  }
  const size = Number(options.size ?? 200);
  const tos = Number(options.tos ?? 0);
  const stream = Number(options.stream ?? 7);
  const fd = openFrameSender(ifindex, ifname!);
  for (let seq = 0; seq < Number(countText); seq++) {
    const payload = new Uint8Array(size);
    writeProbe(payload, 0, size, stream, seq, wallClockUs());
    const frame = buildUdpFrame({
      src: parseIpv4(options.src ?? '10.99.1.1')!,
      dst: group,
      srcPort: 40000,
      dstPort: Number(portText),
      payload,
      ttl: Number(options.ttl ?? 16),
      dscp: tos >>> 2,
      ecn: tos & 3,
      id: seq & 0xffff,
      vlanTags: tagsOf(options.vlan),
    });
    sendFrame(fd, frame);
    // Paced a little so a receiver's socket buffer and the relay's ring never overflow.
    if (seq % 20 === 19) await new Promise((r) => setTimeout(r, 2));
  }
}

if (process.argv[1]?.endsWith('send-frames.js')) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  });
}
