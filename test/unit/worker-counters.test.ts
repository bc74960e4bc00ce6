import { test } from 'node:test';
import assert from 'node:assert/strict';

import { DropReason } from '../../src/packet/frame.js';
import {
  EGRESS_FAILED,
  FORWARDED,
  NO_OUTPUT,
  NO_RULE,
  OTHER_VLAN,
  OUTCOMES,
  OVERSIZE,
  OWN_SOURCE,
  TOO_MANY_VLAN_TAGS,
  TTL_EXPIRED,
  WORKER_RESTART,
} from '../../src/packet/frame-outcomes.js';
import { WorkerCounterSet } from '../../src/worker/worker-counters.js';

const BUCKETS = [
  'forwarded',
  'noRule',
  'notIpv4Udp',
  'malformed',
  'fragments',
  'filtered',
  'unsent',
  'workerRestart',
];

test('every outcome code has one name and one bucket', () => {
  const names = OUTCOMES.map((o) => o.name);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  for (const o of OUTCOMES) assert.ok(BUCKETS.includes(o.bucket), `${o.name} → ${o.bucket}`);
  const bucketOf = (code: number): string => OUTCOMES[code]!.bucket;
  assert.equal(bucketOf(FORWARDED), 'forwarded');
  assert.equal(bucketOf(DropReason.NOT_IPV4), 'notIpv4Udp');
  assert.equal(bucketOf(DropReason.NOT_UDP), 'notIpv4Udp');
  assert.equal(bucketOf(DropReason.FRAGMENT), 'fragments');
  assert.equal(bucketOf(DropReason.BAD_IPV4_CHECKSUM), 'malformed');
  assert.equal(bucketOf(OVERSIZE), 'malformed');
  assert.equal(bucketOf(NO_RULE), 'noRule');
  assert.equal(bucketOf(OTHER_VLAN), 'noRule');
  assert.equal(bucketOf(NO_OUTPUT), 'noRule');
  assert.equal(bucketOf(OWN_SOURCE), 'filtered');
  assert.equal(bucketOf(TTL_EXPIRED), 'filtered');
  assert.equal(bucketOf(TOO_MANY_VLAN_TAGS), 'filtered');
  assert.equal(bucketOf(WORKER_RESTART), 'workerRestart');
  assert.equal(bucketOf(EGRESS_FAILED), 'unsent');
  assert.equal(OUTCOMES[TOO_MANY_VLAN_TAGS]!.name, 'too_many_vlan_tags');
});

test('snapshot: framesSeen is the sum of the buckets, each reason in detail', () => {
  const counters = new WorkerCounterSet();
  OUTCOMES.forEach((_, code) => (counters.outcomes[code] = code + 1));
  counters.egressErrors = 5;
  counters.ringDrops = 7;
  const s = counters.snapshot();
  const total = OUTCOMES.reduce((sum, _, code) => sum + code + 1, 0);
  assert.equal(s.framesSeen, total);
  assert.equal(counters.framesSeen, total);
  const buckets =
    s.forwarded +
    s.noRule +
    s.notIpv4Udp +
    s.malformed +
    s.fragments +
    s.filtered +
    s.unsent +
    s.workerRestart;
  assert.equal(buckets, s.framesSeen);
  assert.equal(s.forwarded, FORWARDED + 1);
  assert.equal(s.workerRestart, WORKER_RESTART + 1);
  assert.equal(s.unsent, EGRESS_FAILED + 1);
  assert.equal(s.noRule, NO_RULE + 1 + OTHER_VLAN + 1 + NO_OUTPUT + 1);
  assert.equal(s.filtered, OWN_SOURCE + 1 + TTL_EXPIRED + 1 + TOO_MANY_VLAN_TAGS + 1);
  assert.equal(s.dropsByReason.forwarded, undefined, 'forwarded is not a drop');
  assert.equal(s.dropsByReason.own_source, OWN_SOURCE + 1);
  assert.equal(s.dropsByReason.worker_restart, WORKER_RESTART + 1);
  const reasons = Object.values(s.dropsByReason).reduce((a, b) => a + b, 0);
  assert.equal(reasons + s.forwarded, s.framesSeen);
  assert.equal(s.egressErrors, 5);
  assert.equal(s.ringDrops, 7);
});

test('an empty set reports zeros and no reasons', () => {
  const s = new WorkerCounterSet().snapshot();
  assert.equal(s.framesSeen, 0);
  assert.deepEqual(s.dropsByReason, {});
});
