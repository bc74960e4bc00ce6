import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

import { buildUdpFrame } from '../../src/packet/build.js';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { WorkerRule } from '../../src/protocol/worker-messages.js';
import { AF_PACKET, SOCK_RAW } from '../../src/sys/constants.js';
import { ringGeometryFor, RxRing } from '../../src/sys/rx-ring.js';
import { openSocket } from '../../src/sys/socket.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';
import { HostAddresses } from '../../src/worker/host-addresses.js';
import { InputPath } from '../../src/worker/input-path.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';
import { Sink, workerOutput, writeSlot } from './kernel-fixtures.js';
import { inPrivateNetns, isRoot, rerunInPrivateNetns } from './private-netns.js';

// The data path's hook for RTP stream health: a rule with the rtp option has each matched
// payload judged (whatever becomes of the frame), a rule without has no RTP counters, and a rule
// update keeps the stream's state. Frames are written into a ring by the test; copies go to a UDP
// sink on loopback.

const ip = (text: string): number => parseIpv4(text)!;
const SETTINGS = {
  ringBytes: 1 << 20,
  batchSize: 64,
  batchesPerWakeup: 16,
  coalesceUs: 0,
  statsIntervalMs: 1000,
};
const PORT = 5004;

function rtpPayload(seq: number): Uint8Array {
  const p = new Uint8Array(64);
  p[0] = 0x80;
  p[1] = 33;
  p[2] = (seq >>> 8) & 0xff;
  p[3] = seq & 0xff;
  p[11] = 7; // SSRC 7
  return p;
}

function tests(): void {
  test('rtp rules judge every matched payload; other rules carry no RTP state', () => {
    const counters = new WorkerCounterSet();
    const sink = new Sink();
    const fd = openSocket(AF_PACKET, SOCK_RAW, 0, 'test ring');
    const ring = RxRing.attach(fd, ringGeometryFor(1500, SETTINGS.ringBytes));
    const input = new InputPath(fd, 'test', 1500, SETTINGS, counters, new HostAddresses(), {
      watch: () => ({ stop() {} }),
    });
    const spec = (id: string, group: string, rtp: boolean): WorkerRule => ({
      id,
      inputInterface: 'test',
      inputVlan: 0,
      inputSource: 0,
      inputGroup: ip(group),
      inputPort: PORT,
      rtp,
      outputs: [workerOutput('o', { attached: true })],
    });
    const output = (): OutputPath => {
      const o = new OutputPath(workerOutput('o', { attached: false }), SETTINGS.batchSize, counters);
      o.attach(sink.connectedSocket(), undefined);
      return o;
    };
    let withRtp = new ForwardingRule(spec('a', '239.1.1.1', true), [output()]);
    const without = new ForwardingRule(spec('b', '239.1.1.2', false), [output()]);
    input.addRule(withRtp);
    input.addRule(without);
    let slot = 0;
    const send = (group: string, seqs: number[], payload = rtpPayload): void => {
      for (const seq of seqs) {
        const frame = buildUdpFrame({
          src: ip('198.51.100.7'),
          dst: ip(group),
          srcPort: 4000,
          dstPort: PORT,
          payload: payload(seq),
        });
        writeSlot(ring, slot, frame, 0, undefined);
        slot = (slot + 1) % ring.frameCount;
      }
      input.drain();
    };
    try {
      // 3 missing after 9; 12 and 11 swapped; 14 twice; one short payload.
      send('239.1.1.1', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 12, 14, 14]);
      send('239.1.1.1', [0], () => new Uint8Array(8));
      send('239.1.1.2', [0, 1, 5, 4]);
      assert.equal(without.rtp, null);
      assert.equal(without.snapshot().rtp, null);
      assert.equal(without.snapshot().packetsIn, 4);
      // A reload changes the outputs: the stream's state goes on with the rule.
      const updated = withRtp.withOutputs(spec('a', '239.1.1.1', true), withRtp.outputs);
      input.removeRule(withRtp);
      input.addRule(updated);
      withRtp = updated;
      send('239.1.1.1', [15, 16, 18]);
      withRtp.rtp!.settle(Date.now());
      withRtp.rtp!.settle(Date.now() + 1000);
      const c = withRtp.snapshot();
      assert.equal(c.packetsIn, 18);
      assert.deepEqual(c.rtp, {
        packets: 17,
        notRtp: 1,
        lost: 3, // 10 and 11 never came (12 and 13 did), nor 17
        gaps: 2,
        duplicates: 1,
        reordered: 1,
        ssrcChanges: 0,
        resyncs: 0,
      });
      assert.equal(counters.snapshot().forwarded, 22, 'RTP health never changes what is forwarded');
      // Turning the option off drops the sequence state; on again starts a new one, and the
      // counts carry on in the rule's cells (counters never go back).
      const off = withRtp.withOutputs(spec('a', '239.1.1.1', false), withRtp.outputs);
      assert.equal(off.rtp, null);
      assert.equal(off.snapshot().rtp, null);
      const again = off.withOutputs(spec('a', '239.1.1.1', true), off.outputs);
      assert.notEqual(again.rtp, withRtp.rtp);
      assert.equal(again.snapshot().rtp!.packets, 17);
      assert.equal(off.fingerprint().rtp, false);
      assert.equal(withRtp.fingerprint().rtp, true);
    } finally {
      input.close();
      ring.detach();
      withRtp.close();
      without.close();
      sink.close();
    }
  });
}

if (isRoot && !inPrivateNetns) {
  test('RTP health in the data path, in a network namespace of its own', () => {
    const r = rerunInPrivateNetns(fileURLToPath(import.meta.url));
    assert.equal(r.status, 0, r.output);
  });
} else if (!isRoot) {
  test('RTP health in the data path', { skip: 'needs root for AF_PACKET' }, () => {});
} else {
  tests();
}
