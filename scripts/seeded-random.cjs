// The one seeded random generator of the tests, benchmarks and scripts (mulberry32): the same seed gives
// the same sequence on every machine, so a failing random run can be replayed from its seed.
'use strict';

/** A generator of numbers in [0, 1) from a 32-bit seed. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

module.exports = { seededRandom };
