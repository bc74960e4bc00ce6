import assert from 'node:assert/strict';
import { test } from 'node:test';
import { findMaxRate, LOSSLESS, WITHIN_ONE_PERCENT } from '../../bench/search.js';
import type { Trial } from '../../bench/trial.js';

// The benchmark's rate searches against a made-up relay: lossless up to 100k pps, 0.5 % loss up
// to 150k, then 5 %; a generator that offers at most 400k.

function trial(rate: number | 'max'): Trial {
  const sentPps = rate === 'max' ? 400_000 : rate;
  const loss = sentPps <= 100_000 ? 0 : sentPps <= 150_000 ? 0.005 : 0.05;
  return {
    target: rate,
    sentPps,
    refused: 0,
    inputPps: sentPps,
    outputPps: sentPps * (1 - loss),
    forwardedPps: sentPps * (1 - loss),
    loss,
    relayCoreBusy: 0,
    relayProcessCpu: 0,
    receiveThreadCpu: 0,
    switchesPerPacket: 0,
  };
}

test('the lossless search and the ≤1 % search find their own limits; the second starts from the first', async () => {
  const asked: number[] = [];
  const run = (rate: number) => {
    asked.push(rate);
    return Promise.resolve(trial(rate));
  };
  const full = trial('max');
  const lossless = await findMaxRate(run, full, 0.02, LOSSLESS);
  assert.ok(
    lossless.best!.sentPps <= 100_000 && lossless.best!.sentPps > 98_000,
    String(lossless.best!.sentPps),
  );
  assert.equal(lossless.generatorBound, false);
  const before = asked.length;
  const onePercent = await findMaxRate(run, full, 0.02, WITHIN_ONE_PERCENT, [full, ...lossless.trials]);
  assert.ok(
    onePercent.best!.sentPps <= 150_000 && onePercent.best!.sentPps > 147_000,
    String(onePercent.best!.sentPps),
  );
  assert.ok(
    asked.slice(before).every((rate) => rate > lossless.best!.sentPps),
    'the second search tried nothing the first had already settled',
  );
});

test('a seed with nothing over the budget above its best is the answer, marked generator-bound near the top', async () => {
  const full = trial('max');
  const seed = [trial(392_000)];
  seed[0]!.loss = 0.002;
  const r = await findMaxRate(
    () => Promise.reject(new Error('no trial needed')),
    full,
    0.02,
    WITHIN_ONE_PERCENT,
    seed,
  );
  assert.equal(r.best, seed[0]);
  assert.equal(r.generatorBound, true);
});
