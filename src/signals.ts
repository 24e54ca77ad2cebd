// The one place that listens to process signals: the CLI's "stop once" and the guard's "drain, then exit;
// a second signal exits at once" are both built on it.

/**
 * Calls `handler(signal, count)` for each of `signals`, count being how many of them arrived so far
 * (1 for the first). Returns a function that removes the listeners.
 */
export function onSignals(
  signals: readonly NodeJS.Signals[],
  handler: (signal: NodeJS.Signals, count: number) => void,
): () => void {
  let count = 0;
  const listener = (signal: NodeJS.Signals) => {
    count += 1;
    handler(signal, count);
  };
  for (const signal of signals) process.on(signal, listener);
  return () => {
    for (const signal of signals) process.off(signal, listener);
  };
}
