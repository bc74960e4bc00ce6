// The maximum lossless input rate: the highest offered rate with loss ≤ 0.1 %, found by
// bisection between a lossy and a lossless rate, starting near what the relay forwarded at full
// load.
import type { Trial } from './trial.js';

export const LOSSLESS = 0.001;
/**
 * A figure at least this share of the most the generator could offer in the same case (its
 * full-load rate) is generator-bound: the generator, not the system, set it.
 */
export const GENERATOR_BOUND = 0.97;

export function generatorBound(figurePps: number, generatorMaxPps: number): boolean {
  return figurePps >= generatorMaxPps * GENERATOR_BOUND;
}

export interface LosslessResult {
  /** The highest lossless trial, or null when even the lowest rate tried lost packets. */
  best: Trial | null;
  /** True when the best rate is as fast as the generator went: the relay may do more. */
  generatorBound: boolean;
  trials: Trial[];
}

/**
 * `fullLoad` is the unpaced trial: its forwarded rate is where the search starts, its sent rate is
 * the most the generator can offer. Stops when the bounds are within `resolution` of each other.
 */
export async function findMaxLossless(
  run: (rate: number) => Promise<Trial>,
  fullLoad: Trial,
  resolution: number,
): Promise<LosslessResult> {
  const trials: Trial[] = [];
  const attempt = async (rate: number): Promise<Trial> => {
    const t = await run(rate);
    trials.push(t);
    return t;
  };
  const generatorMax = fullLoad.sentPps;
  if (fullLoad.loss <= LOSSLESS) {
    // Everything the generator could send was forwarded: confirm at a paced rate just below it.
    const t = await attempt(generatorMax * 0.98);
    if (t.loss <= LOSSLESS) return { best: t, generatorBound: true, trials };
  }
  let hi = Math.min(generatorMax, Math.max(fullLoad.forwardedPps, 1000) * 1.2);
  const top = await attempt(hi);
  if (top.loss <= LOSSLESS) return { best: top, generatorBound: generatorBound(hi, generatorMax), trials };
  let best: Trial | null = null;
  let lo = hi * 0.5;
  while (best === null && lo >= 1000) {
    const t = await attempt(lo);
    if (t.loss <= LOSSLESS) best = t;
    else {
      hi = lo;
      lo /= 2;
    }
  }
  if (best === null) return { best: null, generatorBound: false, trials };
  while (hi / lo > 1 + resolution) {
    const mid = (lo + hi) / 2;
    const t = await attempt(mid);
    if (t.loss <= LOSSLESS) {
      lo = mid;
      best = t;
    } else hi = mid;
  }
  return { best, generatorBound: false, trials };
}
