// What a server's processes hold on the guard's GPU, by NVML: the bytes a remote model is accounted at.
import { processTree } from '../../guard';
import type { VramGuard } from '../../guard';

/** The bytes NVML attributes to these pids on the guard's device in its latest sample; null when unknown. */
export function nvmlBytesOf(guard: VramGuard, pids: readonly number[]): { bytes: number; timestamp: number } | null {
  const snapshot = guard.latestSnapshot();
  const device = snapshot?.devices.find((d) => d.index === guard.deviceIndex);
  if (!snapshot || !device || device.lost || !device.processes) return null;
  let bytes = 0;
  for (const p of device.processes) {
    if (!pids.includes(p.pid)) continue;
    if (p.usedBytes === null) return null;
    bytes += p.usedBytes;
  }
  return { bytes, timestamp: snapshot.timestamp };
}

/**
 * Waits for a sample taken after `since` (ms since the epoch) in which `settled` holds for the pids'
 * bytes; resolves to those bytes, or to the last reading (null without NVML) after timeoutMs.
 */
export async function nvmlBytesAfter(
  guard: VramGuard,
  pids: () => readonly number[],
  since: number,
  settled: (bytes: number) => boolean,
  timeoutMs: number,
): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  let last: number | null = null;
  for (;;) {
    const reading = guard.latestSnapshot() ? nvmlBytesOf(guard, pids()) : null;
    if (reading && reading.timestamp >= since) {
      last = reading.bytes;
      if (settled(reading.bytes)) return reading.bytes;
    }
    if (guard.latestSnapshot() === null || Date.now() >= deadline) return last;
    await new Promise((resolve) => setTimeout(resolve, Math.max(5, Math.min(guard.intervalMs, deadline - Date.now()))));
  }
}

/** A server process and its descendants (a llama.cpp router's model processes, an Ollama runner). */
export function serverProcesses(pid: number): number[] {
  return processTree(pid);
}
