// Small statistics helpers shared by every benchmark. The definitions match bench/raw_nvml_loop.c, so
// figures from the C loop and from JavaScript are comparable: the median is the mean of the middle two
// values when the count is even; percentiles are nearest-rank.

/** Numbers sorted ascending (a copy). */
export function sorted(values) {
  return Float64Array.from(values).sort();
}

export function median(values) {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values, p) {
  const s = sorted(values);
  if (s.length === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * s.length));
  return s[rank - 1];
}

export function mean(values) {
  if (values.length === 0) return NaN;
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** The usual summary of one sample of durations (whatever unit they are in). */
export function summarize(values) {
  return {
    count: values.length,
    p10: percentile(values, 10),
    median: median(values),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    mean: mean(values),
    min: values.length ? Math.min(...values) : NaN,
    max: values.length ? Math.max(...values) : NaN,
  };
}
