import { test } from 'node:test';
import assert from 'node:assert/strict';

import type { RuleCounters, WorkerCounters } from '../../src/protocol/control-api.js';
import { emptyWorkerCounters } from '../../src/protocol/counters.js';
import {
  StatsCollector,
  rate,
  ruleRates,
  workerRates,
  type CounterSample,
} from '../../src/supervisor/stats-collector.js';

function worker(framesSeen: number, forwarded: number): WorkerCounters {
  return { ...emptyWorkerCounters(), framesSeen, forwarded };
}

function ruleCounters(packetsIn: number, bytesIn: number, outputs: number[]): RuleCounters {
  return {
    packetsIn,
    bytesIn,
    drops: {},
    outputs: outputs.map((packets) => ({
      packets,
      bytes: packets * 100,
      raw: 0,
      xdp: 0,
      errors: {},
      ttlExpired: 0,
    })),
    lastPacketAt: null,
    rtp: null,
  };
}

type WorkerSample = CounterSample['workers'][number];

function report(framesSeen: number, forwarded = framesSeen, cpuSeconds: number | null = 0): WorkerSample {
  return { counters: worker(framesSeen, forwarded), cpuSeconds };
}

/** A sample at `at` ms of one worker that has seen `framesSeen` frames. */
function sample(framesSeen: number, at: number): CounterSample {
  return { at, workers: [report(framesSeen)], rules: new Map() };
}

// ---------------------------------------------------------------- rate

test('rate is the difference per second', () => {
  assert.equal(rate(300, 100, 2), 100);
  assert.equal(rate(150, 100, 0.5), 100);
  assert.equal(rate(100, 100, 1), 0);
});

test('rate is 0 without a baseline', () => {
  assert.equal(rate(300, undefined, 2), 0);
});

test('rate is 0 across a counter reset', () => {
  assert.equal(rate(5, 1000, 1), 0);
});

test('rate is 0 for a zero or negative interval', () => {
  assert.equal(rate(300, 100, 0), 0);
  assert.equal(rate(300, 100, -1), 0);
});

// ---------------------------------------------------------------- ruleRates / workerRates

test('ruleRates gives packets, bytes and per-output rates', () => {
  const now = ruleCounters(1100, 110_000, [1100, 550]);
  const before = ruleCounters(100, 10_000, [100, 50]);
  assert.deepEqual(ruleRates(now, before, 2), {
    packetsIn: 500,
    bytesIn: 50_000,
    outputs: [500, 250],
    outputBytes: [50_000, 25_000],
  });
});

test('ruleRates without a baseline is all zeros, one per output', () => {
  assert.deepEqual(ruleRates(ruleCounters(10, 1000, [10, 10, 10]), undefined, 1), {
    packetsIn: 0,
    bytesIn: 0,
    outputs: [0, 0, 0],
    outputBytes: [0, 0, 0],
  });
});

test('ruleRates gives 0 for an output the baseline did not have', () => {
  const r = ruleRates(ruleCounters(20, 2000, [20, 5]), ruleCounters(10, 1000, [10]), 1);
  assert.deepEqual(r, { packetsIn: 10, bytesIn: 1000, outputs: [10, 0], outputBytes: [1000, 0] });
});

test('ruleRates gives 0 for a counter that went backwards, per counter', () => {
  const r = ruleRates(ruleCounters(5, 3000, [5, 30]), ruleCounters(10, 1000, [10, 10]), 1);
  assert.deepEqual(r, { packetsIn: 0, bytesIn: 2000, outputs: [0, 20], outputBytes: [0, 2000] });
});

test('ruleRates with zero seconds is all zeros', () => {
  assert.deepEqual(ruleRates(ruleCounters(20, 2000, [20]), ruleCounters(10, 1000, [10]), 0), {
    packetsIn: 0,
    bytesIn: 0,
    outputs: [0],
    outputBytes: [0],
  });
});

test('workerRates gives frames seen and forwarded per second, and the share of a CPU', () => {
  assert.deepEqual(workerRates(report(3000, 2000, 3), report(1000, 1000, 1), 4), {
    framesSeen: 500,
    forwarded: 250,
    cpu: 0.5,
  });
});

test('workerRates without a baseline or across a restart is 0', () => {
  const zero = { framesSeen: 0, forwarded: 0, cpu: 0 };
  assert.deepEqual(workerRates(report(3000, 2000), undefined, 1), zero);
  assert.deepEqual(workerRates(report(10, 10), report(1000, 900), 1), zero);
});

// ---------------------------------------------------------------- StatsCollector

test('an empty collector has no latest and no baseline', () => {
  const c = new StatsCollector();
  assert.equal(c.latest(), undefined);
  assert.equal(c.baseline(1_000_000), undefined);
});

test('latest is the last recorded sample', () => {
  const c = new StatsCollector();
  const s2 = sample(2, 2000);
  c.record(sample(1, 1000));
  c.record(s2);
  assert.equal(c.latest(), s2);
});

test('a worker with no CPU figure yet has CPU rate 0', () => {
  assert.equal(workerRates(report(10, 10, null), report(0, 0, 1), 1).cpu, 0);
});

test('baseline picks the newest sample at least 200 ms older', () => {
  const c = new StatsCollector();
  c.record(sample(1, 1000));
  c.record(sample(2, 2000));
  c.record(sample(3, 2900));
  // 2900 is only 100 ms before 3000: too close; 2000 is the newest old enough.
  assert.equal(c.baseline(3000)!.at, 2000);
  // Exactly 200 ms counts.
  assert.equal(c.baseline(3100)!.at, 2900);
  assert.equal(c.baseline(5000)!.at, 2900);
  assert.equal(c.baseline(2199)!.at, 1000);
  assert.equal(c.baseline(2200)!.at, 2000);
});

test('baseline is undefined when every sample is too recent', () => {
  const c = new StatsCollector();
  c.record(sample(1, 1000));
  c.record(sample(2, 1100));
  assert.equal(c.baseline(1199), undefined);
  assert.equal(c.baseline(1000), undefined);
  assert.equal(c.baseline(1200)!.at, 1000);
});

test('baseline ignores samples from the future', () => {
  const c = new StatsCollector();
  c.record(sample(1, 1000));
  c.record(sample(2, 5000));
  assert.equal(c.baseline(2000)!.at, 1000);
});

test('only the last four samples are kept', () => {
  const c = new StatsCollector();
  for (const at of [0, 10, 20, 30]) c.record(sample(at, at));
  assert.equal(c.baseline(205)!.at, 0);
  c.record(sample(40, 40));
  // The sample at 0 is gone; 10..40 are all less than 200 ms before 205.
  assert.equal(c.baseline(205), undefined);
  assert.equal(c.baseline(215)!.at, 10);
});

test('baseline and rates together: a worker at 1000 frames/s', () => {
  const c = new StatsCollector();
  for (let s = 0; s <= 3; s++) c.record(sample(s * 1000, s * 1000));
  const at = 3500;
  const base = c.baseline(at)!;
  const seconds = (at - base.at) / 1000;
  assert.equal(base.at, 3000);
  assert.deepEqual(workerRates(report(3500, 3500), base.workers[0], seconds), {
    framesSeen: 1000,
    forwarded: 1000,
    cpu: 0,
  });
});
