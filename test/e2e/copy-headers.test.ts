import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { frameArgs } from '../helpers/send-frames.js';
import { listen, RelayHost } from '../helpers/relay-host.js';
import { ROOT, sleep, Topology } from '../helpers/topology.js';

// What a copy's IPv4 header carries, read off the wire with tshark: the input's DSCP and ECN
// unless the output sets its own DSCP, and the lower of the input's TTL minus one and the
// output's TTL, on the raw path, the socket path and a unicast output alike.

const FIELDS = ['ip.dst', 'ip.dsfield', 'ip.ttl', 'ip.checksum.status'] as const;

test('copies keep the input DSCP and ECN (or take the output’s DSCP) and carry a decremented TTL, on every path', async () => {
  const topo = new Topology({ net: 98 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '1']);
    const unicast = topo.receiverAddress(0);
    relay.addRule(
      '239.1.1.1',
      5000,
      [
        '239.2.2.1:6000:out0:raw',
        '239.2.2.2:6000:out0:socket',
        `${unicast}:7000:out0`,
        '239.2.2.3:6000:out0:raw:dscp=af41',
        '239.2.2.4:6000:out0:socket:dscp=cs1:ttl=3',
        '239.2.2.5:6000:out0:raw:fixed-ttl=30',
      ].join(','),
    );
    // A socket on the unicast port, or the receiver answers ICMP port unreachable and the
    // relay's next copy to it fails (ECONNREFUSED, counted).
    const unicastReceiver = await listen(topo, 'eth0', unicast, 7000);
    const capture = topo.start(topo.receiver, 'tshark', [
      ...[
        '-i',
        'eth0',
        '-f',
        `udp and (dst net 239.2.2.0/24 or dst host ${unicast})`,
        '-c',
        '120',
        '-l',
        '-n',
      ],
      ...[
        '-o',
        'ip.check_checksum:TRUE',
        '-T',
        'fields',
        '-E',
        'separator=|',
        ...FIELDS.flatMap((f) => ['-e', f]),
      ],
    ]);
    await capture.waitForStderr('Capturing on', 15000);
    await sleep(300);
    // EF with ECN ECT(1), TTL 10.
    const r = topo.exec(topo.sender, process.execPath, [
      join(ROOT, 'dist/test/helpers/send-frames.js'),
      ...['eth0', '239.1.1.1', '5000', '20'],
      ...frameArgs({ ttl: 10, tos: 0xb9, src: topo.senderAddress() }),
    ]);
    assert.equal(r.code, 0, r.stderr);
    const { code } = await Promise.race([capture.exited, sleep(15000).then(() => ({ code: -1 }))]);
    assert.equal(code, 0, `tshark: ${capture.stderr}\n${JSON.stringify(relay.stats().rules[0]!.counters)}`);

    const seen = new Map<string, Set<string>>();
    for (const line of capture.stdout.trim().split('\n')) {
      const [dst, dsfield, ttl, checksum] = line.split('|');
      const key = `${dsfield} ttl ${ttl} checksum ${checksum}`;
      seen.set(dst!, (seen.get(dst!) ?? new Set()).add(key));
    }
    const expected: Record<string, string> = {
      '239.2.2.1': '0xb9 ttl 9 checksum 1', // raw: EF + ECT(1) kept, TTL 10 - 1
      '239.2.2.2': '0xb9 ttl 9 checksum 1', // socket path
      [unicast]: '0xb9 ttl 9 checksum 1', // unicast output
      '239.2.2.3': '0x89 ttl 9 checksum 1', // AF41 (34 << 2) with the input's ECN
      '239.2.2.4': '0x21 ttl 3 checksum 1', // CS1 (8 << 2) + ECN; the cap of 3 wins over 9
      '239.2.2.5': '0xb9 ttl 30 checksum 1', // a fixed TTL replaces the input's
    };
    for (const [dst, header] of Object.entries(expected)) {
      assert.deepEqual([...(seen.get(dst) ?? [])], [header], `copies to ${dst}`);
    }
    unicastReceiver.child.kill('SIGINT');
  } finally {
    topo.destroy();
  }
});
