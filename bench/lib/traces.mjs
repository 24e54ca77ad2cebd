// Synthetic request traces for the keep-alive benchmark (bench/traces.mjs): seeded, so every run
// replays the same requests. Each trace is { name, description, durationMs, models, requests }, where
// a model is { id, bytes, loadMs } and a request is { at, model, serviceMs }, sorted by `at`.
import { createRequire } from 'node:module';

const { seededRandom } = createRequire(import.meta.url)('../../scripts/seeded-random.cjs');

const GiB = 2 ** 30;
const MIN = 60_000;

/** The seeded generator (mulberry32), uniform in [0, 1). */
export const prng = seededRandom;

const exp = (rand, mean) => -Math.log(1 - rand()) * mean;
const logUniform = (rand, lo, hi) => Math.exp(Math.log(lo) + rand() * (Math.log(hi) - Math.log(lo)));

/**
 * Models of 2 to 8 GiB (their sum well over the quota); a load takes 0.5 s plus 1.5 s per GiB, as
 * reading weights from a local disk and uploading them does.
 */
export function models(rand, count) {
  const sizes = [2, 3, 4, 4, 6, 8];
  return Array.from({ length: count }, (_, i) => {
    const gib = sizes[Math.floor(rand() * sizes.length)];
    return { id: `m${String(i).padStart(2, '0')}`, bytes: gib * GiB, loadMs: 500 + 1500 * gib };
  });
}

function finish(name, description, durationMs, ms, requests, rand) {
  const sorted = requests
    .filter((r) => r.at >= 0 && r.at < durationMs)
    .sort((a, b) => a.at - b.at || (a.model < b.model ? -1 : 1))
    .map((r) => ({ ...r, at: Math.round(r.at), serviceMs: Math.round(Math.min(20_000, 200 + exp(rand, 1500))) }));
  return { name, description, durationMs, models: ms, requests: sorted };
}

/** Every model at its own constant Poisson rate, one request per 20 s to one per 15 minutes. */
export function steady({ seed = 1, count = 14, durationMs = 60 * MIN } = {}) {
  const rand = prng(seed);
  const ms = models(rand, count);
  const requests = [];
  for (const m of ms) {
    const mean = logUniform(rand, 20_000, 15 * MIN);
    for (let t = exp(rand, mean); t < durationMs; t += exp(rand, mean)) requests.push({ at: t, model: m.id });
  }
  return finish('steady', 'constant Poisson rate per model (one per 20 s to one per 15 min)', durationMs, ms, requests, rand);
}

/** Bursts of 5 to 30 requests about 3 s apart, the bursts of each model 3 to 20 minutes apart. */
export function bursty({ seed = 2, count = 14, durationMs = 60 * MIN } = {}) {
  const rand = prng(seed);
  const ms = models(rand, count);
  const requests = [];
  for (const m of ms) {
    const gap = logUniform(rand, 3 * MIN, 20 * MIN);
    for (let t = exp(rand, gap); t < durationMs; t += exp(rand, gap)) {
      const n = 5 + Math.floor(rand() * 26);
      let at = t;
      for (let i = 0; i < n; i += 1) {
        requests.push({ at, model: m.id });
        at += exp(rand, 3000);
      }
      t = at;
    }
  }
  return finish('bursty', 'bursts of 5–30 requests ~3 s apart, bursts 3–20 min apart per model', durationMs, ms, requests, rand);
}

/** Two groups of models whose rates swing in opposite phase over a 30-minute "day" (working sets shift). */
export function diurnal({ seed = 3, count = 14, durationMs = 60 * MIN, periodMs = 30 * MIN } = {}) {
  const rand = prng(seed);
  const ms = models(rand, count);
  const requests = [];
  ms.forEach((m, i) => {
    const peakMean = logUniform(rand, 15_000, 3 * MIN);
    const phase = (i % 2) * Math.PI + (rand() - 0.5) * 0.6;
    // Thinning: candidates at the peak rate, kept with the rate's share of the peak at that time.
    for (let t = exp(rand, peakMean); t < durationMs; t += exp(rand, peakMean)) {
      const share = 0.5 * (1 + Math.sin((2 * Math.PI * t) / periodMs + phase)) ** 3 / 4;
      if (rand() < 0.02 + 0.98 * share) requests.push({ at: t, model: m.id });
    }
  });
  return finish('diurnal', 'two groups in opposite phase over a 30-min cycle (peak one per 15 s to one per 3 min)', durationMs, ms, requests, rand);
}

/** One hot model (a request per 4 s) and a Zipf long tail (s = 1.1) of the others. */
export function hotTail({ seed = 4, count = 16, durationMs = 60 * MIN } = {}) {
  const rand = prng(seed);
  const ms = models(rand, count);
  const requests = [];
  ms.forEach((m, rank) => {
    const mean = rank === 0 ? 4000 : 45_000 * (rank + 1) ** 1.1;
    for (let t = exp(rand, mean); t < durationMs; t += exp(rand, mean)) requests.push({ at: t, model: m.id });
  });
  return finish('hot + long tail', 'one model every 4 s, the rest Zipf (s = 1.1) from one per 100 s to one per 17 min', durationMs, ms, requests, rand);
}

export const TRACES = [steady, bursty, diurnal, hotTail];
