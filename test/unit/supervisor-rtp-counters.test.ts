import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';

import { REGION_BYTES, RTP_LOST, RULE_RTP } from '../../src/protocol/counter-layout.js';
import type { WorkerRule } from '../../src/protocol/worker-messages.js';
import { mapSharedMemory } from '../../src/sys/shared-memory.js';
import { CounterStore } from '../../src/supervisor/counter-store.js';
import { CounterRegion } from '../../src/worker/worker-counters.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';

// A rule's RTP stream health counts in its own cells of the rule's slot, in the memory the
// supervisor shares with each worker: the supervisor reads them for a rule with the option (null
// for others), sums the workers, keeps them across a worker's restart, and refuses a value that
// goes back, like every counter there.

const lines: { code?: string }[] = [];
const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });

const rule = (rtp: boolean): WorkerRule => ({
  id: 'r-0123456789ab',
  inputInterface: 'in0',
  inputVlan: 0,
  inputSource: 0,
  inputGroup: 0xef010101,
  inputPort: 5004,
  rtp,
  outputs: [],
});

function mapped(store: CounterStore, id: number) {
  const memory = mapSharedMemory(store.fd(id), REGION_BYTES);
  return { memory, region: new CounterRegion(new Float64Array(memory.buffer)) };
}

/** `seqs` as RTP payloads (SSRC 5) through the rule's tracker. */
function feed(forwarding: ForwardingRule, seqs: number[]): void {
  for (const seq of seqs) {
    const p = new Uint8Array(20);
    p[0] = 0x80;
    p[2] = seq >>> 8;
    p[3] = seq & 0xff;
    p[11] = 5;
    forwarding.rtp!.observe(p, 0, p.length);
  }
}

test('RTP counters: read for a rule with the option, summed over workers, kept across a restart', () => {
  const store = new CounterStore(2, log);
  try {
    const slots = store.allocateRule(0);
    assert.equal(store.rule(slots, false).rtp, null);
    assert.deepEqual(store.rule(slots, true).rtp, {
      packets: 0,
      notRtp: 0,
      lost: 0,
      gaps: 0,
      duplicates: 0,
      reordered: 0,
      ssrcChanges: 0,
      resyncs: 0,
    });
    const w0 = mapped(store, 0);
    const w1 = mapped(store, 1);
    const a = new ForwardingRule(rule(true), [], w0.region.takeRule(slots.rule));
    const b = new ForwardingRule(rule(true), [], w1.region.takeRule(slots.rule));
    feed(a, [0, 1, 2, 4, 3, 5]); // one late
    feed(b, [100, 101, 101, 102]); // another flow on the other worker: one duplicate
    assert.deepEqual(store.rule(slots, true).rtp, {
      packets: 10,
      notRtp: 0,
      lost: 0,
      gaps: 0,
      duplicates: 1,
      reordered: 1,
      ssrcChanges: 0,
      resyncs: 0,
    });
    assert.equal(store.rule(slots, false).rtp, null, 'a rule without the option shows none');

    // Worker 0 dies; its successor takes the same slot: the counts stay, the sequence starts anew.
    w0.memory.close();
    const again = mapped(store, 0);
    const c = new ForwardingRule(rule(true), [], again.region.takeRule(slots.rule));
    feed(c, [7000, 7001]);
    assert.equal(store.rule(slots, true).rtp!.packets, 12);
    assert.equal(store.rule(slots, true).rtp!.resyncs, 0, 'a new tracker: its first packet starts it');

    // A forged value that goes back is refused; the last good one is shown.
    const cells = again.region.takeRule(slots.rule);
    cells[RULE_RTP + RTP_LOST] = 5;
    assert.equal(store.rule(slots, true).rtp!.lost, 5);
    cells[RULE_RTP + RTP_LOST] = 2;
    assert.equal(store.rule(slots, true).rtp!.lost, 5);
    assert.ok(lines.some((l) => l.code === 'E_WORKER_COUNTERS'));
    again.memory.close();
    w1.memory.close();
  } finally {
    store.close();
  }
});
