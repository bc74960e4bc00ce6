import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RelayHost, send } from '../helpers/relay-host.js';
import { sleep, Topology, type RunningProcess } from '../helpers/topology.js';
import { XdpRelayProcess } from '../helpers/xdp-lab.js';

// The XDP path and the raw egress path put the same packet on the wire for the same output,
// apart from the IP id (the XDP copy keeps the input's) and the destination group each output
// has here. mcrd relays 239.1.1.1 on the raw path, XdpInput relays 239.1.1.2, both to out0 with
// the same output fields (the XDP output gets the raw output socket's source port, read off the
// wire first); tshark on the receiver reads both.

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (namespaces, CAP_BPF, CAP_NET_ADMIN)';

const FIELDS = [
  'ip.dst',
  'eth.src',
  'eth.dst',
  'ip.src',
  'ip.ttl',
  'ip.dsfield',
  'ip.hdr_len',
  'ip.flags.df',
  'ip.flags.mf',
  'ip.proto',
  'ip.len',
  'ip.checksum.status',
  'udp.srcport',
  'udp.dstport',
  'udp.length',
] as const;
type Packet = Record<(typeof FIELDS)[number], string>;

function capture(topo: Topology, count: number): RunningProcess {
  return topo.start(topo.receiver, 'tshark', [
    ...['-i', 'eth0', '-f', 'udp and dst net 239.2.2.0/24', '-c', String(count), '-l', '-n'],
    ...['-o', 'ip.check_checksum:TRUE', '-T', 'fields', '-E', 'separator=|'],
    ...FIELDS.flatMap((f) => ['-e', f]),
  ]);
}

async function packets(tshark: RunningProcess): Promise<Packet[]> {
  const { code } = await Promise.race([tshark.exited, sleep(15000).then(() => ({ code: -1 }))]);
  assert.equal(code, 0, `tshark: ${tshark.stderr}`);
  return tshark.stdout
    .trim()
    .split('\n')
    .map((line) => Object.fromEntries(line.split('|').map((v, i) => [FIELDS[i], v])) as Packet);
}

/** Starts a capture and waits until it really captures (it says so before it does). */
async function started(topo: Topology, count: number, probe: () => void): Promise<RunningProcess> {
  const tshark = capture(topo, count);
  await tshark.waitForStderr('Capturing on', 15000);
  await sleep(1000);
  probe();
  return tshark;
}

test(
  'the XDP copy and the raw path copy of one output are the same on the wire but for the IP id',
  { skip },
  async () => {
    const topo = new Topology();
    let xdp: XdpRelayProcess | undefined;
    try {
      // The XDP copy keeps the sender's UDP checksum: make it a complete one (see xdp-lab.ts), and
      // give the receiving veth NAPI so redirected frames are delivered.
      topo.exec(topo.sender, 'ethtool', ['-K', 'eth0', 'tx', 'off']);
      topo.exec(topo.receiver, 'ethtool', ['-K', 'eth0', 'gro', 'on']);
      const relay = await RelayHost.start(topo, ['--workers', '1']);
      relay.addRule('239.1.1.1', 5000, '239.2.2.1:6000:out0:raw:ttl=8');
      // The raw output's source port is its socket's: read it off the wire.
      const first = await started(topo, 1, () =>
        send(topo, '239.1.1.1', 5000, { rate: 100, size: 100, count: 20 }),
      );
      const sourcePort = Number((await packets(first))[0]!['udp.srcport']);
      assert.ok(sourcePort > 0);

      xdp = new XdpRelayProcess(topo.relay, 'in0');
      assert.equal((await xdp.next()).opened, true);
      const output = { id: 'o', interface: 'out0', group: '239.2.2.2', port: 6000, sourcePort, ttl: 8 };
      await xdp.ask({ set: { key: { group: '239.1.1.2', port: 5000 }, outputs: [output] } });

      const both = await started(topo, 200, () => {
        send(topo, '239.1.1.1', 5000, { rate: 1000, size: 700, count: 100 });
        send(topo, '239.1.1.2', 5000, { rate: 1000, size: 700, count: 100 });
      });
      const all = await packets(both);
      const raw = all.filter((p) => p['ip.dst'] === '239.2.2.1');
      const fast = all.filter((p) => p['ip.dst'] === '239.2.2.2');
      assert.equal(raw.length, 100);
      assert.equal(fast.length, 100);
      const same = FIELDS.filter((f) => f !== 'ip.dst' && f !== 'eth.dst');
      for (let i = 0; i < 100; i++) {
        for (const field of same) assert.equal(fast[i]![field], raw[i]![field], `packet ${i} ${field}`);
        assert.equal(raw[i]!['eth.dst'], '01:00:5e:02:02:01');
        assert.equal(fast[i]!['eth.dst'], '01:00:5e:02:02:02');
        assert.equal(
          fast[i]!['ip.checksum.status'],
          '1',
          `packet ${i}: the XDP copy's IPv4 checksum verifies`,
        );
      }
      const answer = (await xdp.ask({ counters: true })) as { counters: { counts: { packets: number } }[] };
      assert.equal(answer.counters[0]!.counts.packets, 100);
    } finally {
      xdp?.kill();
      topo.destroy();
    }
  },
);
