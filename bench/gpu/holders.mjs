// The processes the GPU check puts on GPU 0 (bench/gpu/check.mjs): a PyTorch process holding a known
// number of bytes (busy or idle) on a GPU machine; in a dry run, a node child the mock lists through
// its control file. Also how the check waits for NVML to list one, and to drop it.
import { spawn } from 'node:child_process';

const MiB = 2 ** 20;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves test()'s first truthy answer, asked every 200 ms; rejects naming `what` after timeoutMs. */
export async function poll(what, test, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = test();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/**
 * The holders of one run: `mock` (a dry run's mock NVML, else undefined) and `mockProcesses` (what the
 * dry run has put on GPU 0, for the stand-in references) come from the check; `track` registers every
 * child so that none outlives the run.
 */
export function createHolders({ vg, mock, mockProcesses, track }) {
  const dryRun = mock !== undefined;
  const pidsOnGpu0 = () => new Set((vg.nvml.readOnce().snapshot.devices[0].processes ?? []).map((p) => p.pid));

  /**
   * Starts a process holding `bytes` on GPU 0: a torch tensor; with `busy`, it also multiplies two
   * 4096 x 4096 matrices back to back until killed, so the driver has utilization samples for it. In a
   * dry run, a node child the mock lists (busy: at 85 % SM).
   */
  async function startHolder(bytes, { busy = false } = {}) {
    if (dryRun) {
      const child = track(spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }));
      const record = { pid: child.pid, usedBytes: bytes + 500 * MiB, ...(busy ? { smUtilPercent: 85, memUtilPercent: 40 } : {}) };
      mockProcesses.push(record);
      mock.control.setProcess(0, { ...record, followPid: true });
      child.once('exit', () => mockProcesses.splice(mockProcesses.indexOf(record), 1));
      return child;
    }
    const work = busy
      ? 'a=torch.randn(4096,4096,device="cuda"); b=torch.randn(4096,4096,device="cuda")\nwhile True:\n  c=a@b; torch.cuda.synchronize()'
      : 'time.sleep(180)';
    const code = `import torch,os,time\nx=torch.empty(${bytes}, dtype=torch.uint8, device='cuda'); torch.cuda.synchronize(); print(os.getpid(), flush=True)\n${work}\n`;
    const child = track(spawn('python3', ['-c', code], { stdio: ['ignore', 'pipe', 'inherit'] }));
    await new Promise((resolve, reject) => {
      child.stdout.once('data', resolve);
      child.once('exit', (c) => reject(new Error(`torch process exited (${c}) before allocating`)));
    });
    return child;
  }

  /**
   * Waits for `child` to appear in GPU 0's list holding at least `bytes`. In a container NVML may list
   * the host's pid instead: then the one new process holding that much is taken, and `hostPid` says so.
   */
  function waitForHolder(child, bytes, before) {
    return poll(`pid ${child.pid} holding ${bytes} bytes`, () => {
      const processes = vg.nvml.readOnce().snapshot.devices[0].processes ?? [];
      const own = processes.find((p) => p.pid === child.pid && p.usedBytes >= bytes);
      if (own) return { nvmlPid: own.pid, usedBytes: own.usedBytes, hostPid: false };
      const fresh = processes.filter((p) => !before.has(p.pid) && p.usedBytes >= bytes);
      return fresh.length === 1 ? { nvmlPid: fresh[0].pid, usedBytes: fresh[0].usedBytes, hostPid: true } : null;
    });
  }

  /** Kills a holder and waits until NVML no longer lists it, so the next step starts from a clean GPU. */
  async function stopHolder(child, nvmlPid) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;
    }
    if (nvmlPid !== undefined) await poll(`pid ${nvmlPid} leaving NVML's list`, () => !pidsOnGpu0().has(nvmlPid));
  }

  return { pidsOnGpu0, startHolder, waitForHolder, stopHolder };
}
