// The watermark contract against FakeMonitor (the same cases run against the real Sampler).
import { FakeMonitor } from '../../src/testing';
import { fakeMigGpu, MIG_A } from './mig-cases';
import { GiB, watermarkContract } from './watermarks';

watermarkContract('FakeMonitor', async () => {
  const monitor = new FakeMonitor([{ totalBytes: 80 * GiB }, fakeMigGpu()]);
  return {
    monitor,
    watch: (spec) => monitor.watch(spec),
    onCrossing: (listener) =>
      monitor.on('watermark', (c: { watermark: { id: number }; above: boolean; valueBytes: number; thresholdBytes: number }) =>
        listener({ id: c.watermark.id, above: c.above, valueBytes: c.valueBytes, thresholdBytes: c.thresholdBytes }),
      ),
    setProcess: (pid, bytes) => monitor.setProcess(0, pid, bytes),
    setMigProcess: (pid, bytes) => monitor.setMigProcess(MIG_A, pid, bytes),
    settle: async () => {
      monitor.publish();
    },
    baseUsedBytes: () => 0,
    close: () => monitor.close(),
  };
});
