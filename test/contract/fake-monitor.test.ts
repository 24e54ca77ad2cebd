// The watermark contract against FakeMonitor (the same cases run against the real Sampler).
import { FakeMonitor } from '../../src/testing';
import { GiB, watermarkContract } from './watermarks';

watermarkContract('FakeMonitor', async () => {
  const monitor = new FakeMonitor([{ totalBytes: 80 * GiB }]);
  return {
    watch: (spec) => monitor.watch(spec),
    onCrossing: (listener) =>
      monitor.on('watermark', (c: { watermark: { id: number }; above: boolean; valueBytes: number; thresholdBytes: number }) =>
        listener({ id: c.watermark.id, above: c.above, valueBytes: c.valueBytes, thresholdBytes: c.thresholdBytes }),
      ),
    setProcess: (pid, bytes) => monitor.setProcess(0, pid, bytes),
    settle: async () => {
      monitor.publish();
    },
    baseUsedBytes: () => 0,
    close: () => monitor.close(),
  };
});
