// The maximum input rate within a loss budget: the highest offered rate with loss ≤ 0.1 %
// ("lossless"), or ≤ 1 %, found by bisection between a rate over the budget and one within it,
// starting near what the relay forwarded at full load, or from the trials an earlier search ran.
import type { Trial } from './trial.js';

export const LOSSLESS = 0.001;
/** The second budget: on this VM the input ring drops 0.1-0.5 % at any load, for every system. */
export const WITHIN_ONE_PERCENT = 0.01;
/**
 * A figure at least this share of the most the generator could offer in the same case (its
 * full-load rate) is generator-bound: the generator, not the system, set it.
 */
export const GENERATOR_BOUND = 0.97;

export function generatorBound(figurePps: number, generatorMaxPps: number): boolean {
  return figurePps >= generatorMaxPps * GENERATOR_BOUND;
}

export interface RateResult {
  /** The highest trial within the budget, or null when even the lowest rate tried lost more. */
  best: Trial | null;
  /** True when the best rate is as fast as the generator went: the relay may do more. */
  generatorBound: boolean;
  trials: Trial[];
}

/**
 * `fullLoad` is the unpaced trial: its forwarded rate is where the search starts, its sent rate is
 * the most the generator can offer. Stops when the bounds are within `resolution` of each other.
 * `seed`: trials already run (another budget's search): the highest within this budget and the
 * lowest above it bound the bisection, so it starts where they leave off.
 */
export async function findMaxRate(
  run: (rate: number) => Promise<Trial>,
  fullLoad: Trial,
  resolution: number,
  maxLoss = LOSSLESS,
  seed: Trial[] = [],
): Promise<RateResult> {
  const trials: Trial[] = [];
  const attempt = async (rate: number): Promise<Trial> => {
    const t = await run(rate);
    trials.push(t);
    return t;
  };
  const within = (t: Trial): boolean => t.loss <= maxLoss;
  const generatorMax = fullLoad.sentPps;
  const seeded = seed.filter(within).sort((a, b) => b.sentPps - a.sentPps)[0];
  if (seeded) {
    const over = seed.filter((t) => !within(t) && t.sentPps > seeded.sentPps);
    if (over.length === 0)
      return { best: seeded, generatorBound: generatorBound(seeded.sentPps, generatorMax), trials };
    return bisect(attempt, within, seeded, Math.min(...over.map((t) => t.sentPps)), resolution, trials);
  }
  if (within(fullLoad)) {
    // Everything the generator could send was forwarded: confirm at a paced rate just below it.
    const t = await attempt(generatorMax * 0.98);
    if (within(t)) return { best: t, generatorBound: true, trials };
  }
  let hi = Math.min(generatorMax, Math.max(fullLoad.forwardedPps, 1000) * 1.2);
  const top = await attempt(hi);
  if (within(top)) return { best: top, generatorBound: generatorBound(hi, generatorMax), trials };
  let best: Trial | null = null;
  let lo = hi * 0.5;
  while (best === null && lo >= 1000) {
    const t = await attempt(lo);
    if (within(t)) best = t;
    else {
      hi = lo;
      lo /= 2;
    }
  }
  if (best === null) return { best: null, generatorBound: false, trials };
  return bisect(attempt, within, best, hi, resolution, trials);
}

/** Bisection between `best` (within the budget) and `hi` (over it). */
async function bisect(
  attempt: (rate: number) => Promise<Trial>,
  within: (t: Trial) => boolean,
  best: Trial,
  hi: number,
  resolution: number,
  trials: Trial[],
): Promise<RateResult> {
  let lo = best.sentPps;
  while (hi / lo > 1 + resolution) {
    const mid = (lo + hi) / 2;
    const t = await attempt(mid);
    if (within(t)) {
      lo = mid;
      best = t;
    } else hi = mid;
  }
  return { best, generatorBound: false, trials };
}
