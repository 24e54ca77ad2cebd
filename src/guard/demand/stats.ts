// The statistics keep-alive is built from: an exponentially weighted moving average and a
// least-squares line. Pure functions, no clock.
import { InvalidOptionError } from '../../errors';

/** Smoothing factors outside this range either oscillate (high) or react too late (low). */
export const ALPHA_RANGE = { min: 0.1, max: 0.3 } as const;

export function validateAlpha(alpha: unknown, option = 'alpha'): number {
  if (typeof alpha !== 'number' || !(alpha >= ALPHA_RANGE.min && alpha <= ALPHA_RANGE.max)) {
    throw new InvalidOptionError(option, `expected a number in [${ALPHA_RANGE.min}, ${ALPHA_RANGE.max}], got ${String(alpha)}`);
  }
  return alpha;
}

/** One EWMA step: the new sample weighs alpha. The first sample (previous null) is taken as is. */
export function ewmaStep(previous: number | null, sample: number, alpha: number): number {
  return previous === null ? sample : previous + alpha * (sample - previous);
}

/** `steps` EWMA steps with a sample of 0 each, in closed form. */
export function ewmaDecay(previous: number, steps: number, alpha: number): number {
  return steps <= 0 ? previous : previous * (1 - alpha) ** steps;
}

export interface LineFit {
  /** y per unit of x. */
  slope: number;
  /** y at x = 0. */
  intercept: number;
  points: number;
}

/** Ordinary least squares over (xs[i], ys[i]); null with fewer than 2 points or all x equal. */
export function fitLine(xs: ArrayLike<number>, ys: ArrayLike<number>): LineFit | null {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return null;
  // Centred on the first x, so epoch-sized timestamps lose no precision.
  const x0 = xs[0]!;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i += 1) {
    sx += xs[i]! - x0;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i += 1) {
    const dx = xs[i]! - x0 - mx;
    num += dx * (ys[i]! - my);
    den += dx * dx;
  }
  if (den === 0) return null;
  const slope = num / den;
  return { slope, intercept: my - slope * (mx + x0), points: n };
}
