import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import { interfaceIndex } from '../../src/sys/interfaces.js';
import {
  createFanoutGroup,
  joinFanoutGroup,
  openFrameSender,
  openIngressSocket,
  sendFrame,
} from '../../src/sys/packet-socket.js';
import { ringGeometryFor, RxRing, TP2_MAC, TP_STATUS_KERNEL, TP_STATUS_USER } from '../../src/sys/rx-ring.js';
import { closeFd } from '../../src/sys/socket.js';
import { sleep } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// Why a restarted worker keeps the ring it inherits rather than making a new one (which would
// reset the kernel's write position to slot 0): PACKET_RX_RING on a socket in a fanout group
// takes the socket out of the group and puts it back at the end. With two members the members
// swap places, and the hash sends every flow to the other socket: the other worker's flows would
// move to the restarted one while it still holds their older frames. Measured here, on lo in a
// namespace of this test's own: 32 flows over a two-socket hash group, before and after.

const FLOWS = 32;
const GEOMETRY = ringGeometryFor(1500, 1 << 20);

/** Source ports of the frames waiting in a ring; releases them. */
function takePorts(ring: RxRing): number[] {
  const ports: number[] = [];
  const slotWords = ring.frameSize >>> 2;
  for (let slot = 0; slot < ring.frameCount; slot++) {
    if ((Atomics.load(ring.words, slot * slotWords) & TP_STATUS_USER) === 0) continue;
    const start = slot * ring.frameSize + ring.halfWords[(slot * ring.frameSize + TP2_MAC) >>> 1]!;
    ports.push((ring.bytes[start + 34]! << 8) | ring.bytes[start + 35]!); // Ethernet 14 + IPv4 20
    Atomics.store(ring.words, slot * slotWords, TP_STATUS_KERNEL);
  }
  return ports;
}

/** Sends one frame per flow (source port 4000 + i); which socket got each flow. */
async function whoGetsWhat(sender: number, rings: RxRing[]): Promise<Map<number, number>> {
  for (let i = 0; i < FLOWS; i++) {
    sendFrame(
      sender,
      buildUdpFrame({
        src: parseIpv4('127.0.0.9')!,
        dst: parseIpv4('239.1.1.1')!,
        srcPort: 4000 + i,
        dstPort: 5000,
        payload: 32,
      }),
    );
  }
  await sleep(20);
  const owner = new Map<number, number>();
  rings.forEach((ring, member) => {
    for (const port of takePorts(ring)) owner.set(port, member);
  });
  assert.equal(owner.size, FLOWS, 'every flow reached one socket');
  return owner;
}

if (isRoot && !inPrivateNetns) {
  test('ring reset and fanout membership, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('ring reset and fanout membership', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  test('a ring kept across a restart keeps every flow on its socket; a ring made anew swaps the members', async () => {
    const lo = interfaceIndex('lo')!;
    const fds = [openIngressSocket(lo, 'lo'), openIngressSocket(lo, 'lo')];
    const sender = openFrameSender(lo, 'lo');
    const group = createFanoutGroup(fds[0]!, 'hash');
    joinFanoutGroup(fds[1]!, group, 'hash');
    const rings = fds.map((fd) => RxRing.attach(fd, GEOMETRY));
    try {
      const before = await whoGetsWhat(sender, rings);
      const counts = [0, 1].map((m) => [...before.values()].filter((o) => o === m).length);
      assert.ok(counts[0]! > 0 && counts[1]! > 0, `both sockets carry flows: ${counts.join(', ')}`);

      // A restart as mcr does it: the worker's mapping goes, the next one maps the same ring.
      rings[0]!.detach();
      rings[0] = RxRing.attach(fds[0]!, GEOMETRY);
      assert.equal(rings[0].inherited, true);
      assert.deepEqual(await whoGetsWhat(sender, rings), before, 'every flow stayed where it was');

      // The ring torn down and set up again (a different size forces it: see RxRing.attach).
      rings[0].detach();
      rings[0] = RxRing.attach(fds[0]!, ringGeometryFor(1500, 2 << 20));
      assert.equal(rings[0].inherited, false, 'a new ring');
      const after = await whoGetsWhat(sender, rings);
      const moved = [...before].filter(([port, member]) => after.get(port) !== member).length;
      assert.equal(moved, FLOWS, 'every flow moved to the other socket');
    } finally {
      for (const ring of rings) ring.detach();
      for (const fd of fds) closeFd(fd);
      closeFd(sender);
    }
  });
}
