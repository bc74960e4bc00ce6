import { ftruncateSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';

import {
  OUTPUT_SLOTS,
  REGION_BYTES,
  RULE_PACKETS_IN,
  RULE_SLOTS,
  WORKER_OUTCOMES,
} from '../../src/protocol/counter-layout.js';
import { FORWARDED, NO_RULE } from '../../src/packet/frame-outcomes.js';
import { mapSharedMemory } from '../../src/sys/shared-memory.js';
import { CounterStore } from '../../src/supervisor/counter-store.js';
import { OutputPath } from '../../src/worker/output-path.js';
import { CounterRegion } from '../../src/worker/worker-counters.js';
import { ForwardingRule } from '../../src/worker/forwarding-rule.js';

// The counters a worker keeps in memory the supervisor shares with it: real shared memory (a
// memfd, mapped twice in this process as it is in two in mcrd), the worker's own classes on one
// side, the supervisor's CounterStore on the other.

function quietLog(lines: { code?: string; msg: string }[] = []) {
  return pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) });
}

/** What a worker process does with its region: maps the descriptor it was given. */
function workerMapping(store: CounterStore, id: number) {
  const memory = mapSharedMemory(store.fd(id), REGION_BYTES);
  return { memory, region: new CounterRegion(new Float64Array(memory.buffer)) };
}

const workerRule = {
  id: 'r-0123456789ab',
  inputInterface: 'in0',
  inputVlan: 0,
  inputSource: 0,
  inputGroup: 0xef010101,
  inputPort: 5000,
  outputs: [],
};
const output = {
  label: '239.2.2.1:6000:out0',
  ttl: 16,
  ttlFixed: false,
  dscp: null,
  attached: false,
  egress: null,
};

test('what a worker counts the supervisor reads at once, and a successor counts on from there', () => {
  const store = new CounterStore(2, quietLog());
  try {
    const slots = store.allocateRule(1);
    const first = workerMapping(store, 1);
    const rule = new ForwardingRule(workerRule, [], first.region.takeRule(slots.rule));
    const out = new OutputPath(output, 8, first.region.worker, first.region.takeOutput(slots.outputs[0]!));
    rule.counters[RULE_PACKETS_IN]! += 5;
    out.counters[1]! += 4; // OUTPUT_PACKETS
    first.region.worker.outcomes[FORWARDED]! += 4;
    first.region.worker.outcomes[NO_RULE]! += 2;
    assert.equal(store.rule(slots).packetsIn, 5);
    assert.equal(store.rule(slots).outputs[0]!.packets, 4);
    assert.equal(store.worker(1).framesSeen, 6);
    assert.equal(store.worker(1).noRule, 2);
    assert.equal(store.worker(0).framesSeen, 0, 'each worker id has its own region');

    // The worker dies (its mapping goes); what it counted stays, and the next process of the same
    // id, given the same slots and tags, counts on.
    first.memory.close();
    assert.equal(store.rule(slots).packetsIn, 5);
    const second = workerMapping(store, 1);
    const again = new ForwardingRule(workerRule, [], second.region.takeRule(slots.rule));
    again.counters[RULE_PACKETS_IN]!++;
    second.region.worker.outcomes[FORWARDED]!++;
    assert.equal(store.rule(slots).packetsIn, 6);
    assert.equal(store.worker(1).forwarded, 5);
    second.memory.close();
  } finally {
    store.close();
  }
});

test('a slot given to a new rule never shows the counts of the rule that had it', () => {
  const store = new CounterStore(1, quietLog());
  try {
    const { memory, region } = workerMapping(store, 0);
    const old = store.allocateRule(0);
    region.takeRule(old.rule)[RULE_PACKETS_IN] = 100;
    store.freeRule(old);
    const next = store.allocateRule(0);
    assert.equal(next.rule.slot, old.rule.slot, 'the slot is reused');
    assert.notEqual(next.rule.tag, old.rule.tag);
    // Before the worker takes it for the new rule (its rule.add is on the way), it reads as zero.
    assert.equal(store.rule(next).packetsIn, 0);
    const cells = region.takeRule(next.rule);
    assert.equal(cells[RULE_PACKETS_IN], 0, 'the worker zeroes a slot it takes under a new tag');
    cells[RULE_PACKETS_IN] = 3;
    assert.equal(store.rule(next).packetsIn, 3);
    memory.close();
  } finally {
    store.close();
  }
});

test('a worker that writes nonsense or makes a counter go backwards changes nothing shown, and is logged once', () => {
  const lines: { code?: string; msg: string }[] = [];
  const store = new CounterStore(1, quietLog(lines));
  try {
    const { memory, region } = workerMapping(store, 0);
    const slots = store.allocateRule(0);
    const cells = region.takeRule(slots.rule);
    cells[RULE_PACKETS_IN] = 10;
    assert.equal(store.rule(slots).packetsIn, 10);
    for (const forged of [3, -1, 0.5, NaN, Infinity, 2 ** 60]) {
      cells[RULE_PACKETS_IN] = forged;
      assert.equal(store.rule(slots).packetsIn, 10, `after ${forged}`);
    }
    const header = new Float64Array(memory.buffer, 0, 64);
    header[WORKER_OUTCOMES + FORWARDED] = 7;
    assert.equal(store.worker(0).forwarded, 7);
    header[WORKER_OUTCOMES + FORWARDED] = -5;
    assert.equal(store.worker(0).forwarded, 7);
    cells[RULE_PACKETS_IN] = 12;
    assert.equal(store.rule(slots).packetsIn, 12, 'sound values are taken again');
    assert.equal(lines.filter((l) => l.code === 'E_WORKER_COUNTERS').length, 1);
    memory.close();
  } finally {
    store.close();
  }
});

test('slots run out with a clear error, all or nothing, and come back when rules go', () => {
  const store = new CounterStore(1, quietLog());
  try {
    // Outputs run out first: rules of 64 outputs take every output slot after OUTPUT_SLOTS / 64.
    const rules = [];
    for (let i = 0; i < OUTPUT_SLOTS / 64; i++) rules.push(store.allocateRule(64));
    assert.ok(rules.length < RULE_SLOTS);
    assert.throws(() => store.allocateRule(1), { code: 'E_TOO_MANY_RULES', message: /remove rules first/ });
    // The refused rule took nothing: a rule without outputs still fits.
    const bare = store.allocateRule(0);
    store.freeRule(rules.pop()!);
    store.freeRule(bare);
    assert.equal(store.allocateRule(64).outputs.length, 64);
  } finally {
    store.close();
  }
});

test('the worker cannot shrink or grow the region under the supervisor (its size is sealed)', () => {
  const store = new CounterStore(1, quietLog());
  try {
    // A shrunk region would kill the supervisor with SIGBUS on its next read.
    for (const size of [0, REGION_BYTES / 2, REGION_BYTES * 2])
      assert.throws(() => ftruncateSync(store.fd(0), size), { code: 'EPERM' }, `size ${size}`);
  } finally {
    store.close();
  }
});
