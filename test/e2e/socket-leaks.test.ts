import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import { RelayHost } from '../helpers/relay-host.js';
import { Topology } from '../helpers/topology.js';

// Rule activation takes every socket a rule needs or none: a rule refused half-way (its input
// sockets and join already made, one output impossible) leaves the supervisor holding nothing.

/** How many descriptors the supervisor holds (its pid from mcrctl ping). */
function supervisorFds(relay: RelayHost): number {
  const pid = relay.mcrctlJson<{ pid: number }>(['ping']).pid;
  return readdirSync(`/proc/${pid}/fd`).length;
}

test('rules refused half-way release every socket they took', async () => {
  const topo = new Topology({ net: 88 });
  try {
    const relay = await RelayHost.start(topo, ['--workers', '2']);
    const before = supervisorFds(relay);
    for (let i = 1; i <= 3; i++) {
      // The input (and its join) and the first output are fine; the raw output on the loopback
      // link cannot be: it has no Ethernet address, found after its UDP socket was opened.
      const outputs = '239.2.2.1:6000:out0,239.2.2.2:6000:lo:raw';
      const r = relay.mcrctl(['add', '-i', 'in0', '-g', `239.1.1.${i}`, '-p', '5000', '-o', outputs]);
      assert.equal(r.code, 2, `raw egress on a link that cannot take it: fix the command\n${r.stderr}`);
      assert.match(r.stderr, /E_RAW_UNSUPPORTED: outputs\[1\]\.mode raw: .*lo is not one/);
    }
    assert.equal(supervisorFds(relay), before, 'no socket left behind');
    // The same input still works for a rule that can.
    relay.addRule('239.1.1.1', 5000, '239.2.2.2:6000:out0');
    assert.ok(supervisorFds(relay) > before);
  } finally {
    topo.destroy();
  }
});
