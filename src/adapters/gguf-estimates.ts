// node-llama-cpp's own resource estimates for a GGUF file (its header read by readGgufFileInfo, then
// GgufInsights), cached per file while its size and modification time stay the same: reading the
// header and estimating costs more than loading a small model, and a server loads the same files again
// and again.
import { statSync } from 'node:fs';

import type { GgufInsights, GgufInsightsResourceRequirements, Llama } from 'node-llama-cpp';

import { importPeer } from '../esm-import';

type NodeLlamaCpp = typeof import('node-llama-cpp');
type ModelEstimateOptions = Parameters<GgufInsights['estimateModelResourceRequirementsV2']>[0];
type ContextEstimateOptions = Parameters<GgufInsights['estimateContextResourceRequirementsV2']>[0];

/** One file's insights and the estimates made from them, by their options. */
export class FileEstimates {
  private readonly made = new Map<string, Promise<GgufInsightsResourceRequirements>>();
  /** What loads of this file measured, by what was loaded (the load's options). */
  private readonly measured = new Map<string, number>();

  constructor(readonly insights: GgufInsights) {}

  /**
   * The bytes to admit a load on: its estimate, or what the last load with the same options measured
   * when that was more (node-llama-cpp's estimates can be well under a real load; a commit above its
   * reservation is re-checked anyway, but admitting on the known figure decides right the first time).
   */
  admissionBytes(options: object, estimatedBytes: number): number {
    return Math.max(estimatedBytes, this.measured.get(JSON.stringify(options)) ?? 0);
  }

  /** Remembers what a load with these options measured. */
  remember(options: object, measuredBytes: number): void {
    this.measured.set(JSON.stringify(options), measuredBytes);
  }

  model(options: ModelEstimateOptions): Promise<GgufInsightsResourceRequirements> {
    return this.once(`model:${JSON.stringify(options)}`, () => this.insights.estimateModelResourceRequirementsV2(options));
  }

  context(options: ContextEstimateOptions): Promise<GgufInsightsResourceRequirements> {
    return this.once(`context:${JSON.stringify(options)}`, () => this.insights.estimateContextResourceRequirementsV2(options));
  }

  private once(key: string, estimate: () => Promise<GgufInsightsResourceRequirements>): Promise<GgufInsightsResourceRequirements> {
    let result = this.made.get(key);
    if (!result) {
      result = estimate();
      result.catch(() => this.made.delete(key));
      this.made.set(key, result);
    }
    return result;
  }
}

export class GgufEstimates {
  private readonly files = new Map<string, { stamp: string; estimates: Promise<FileEstimates> }>();

  constructor(private readonly llama: Llama) {}

  /** The estimates for a model file (read again when the file changed). */
  forFile(path: string): Promise<FileEstimates> {
    let stamp = 'unreadable';
    try {
      const stat = statSync(path);
      stamp = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      // a URI, or a missing file: readGgufFileInfo gives the error
    }
    const cached = this.files.get(path);
    if (cached && cached.stamp === stamp && stamp !== 'unreadable') return cached.estimates;
    const estimates = (async () => {
      const { readGgufFileInfo, GgufInsights: Insights } = await importPeer<NodeLlamaCpp>('node-llama-cpp', 'vramguard/node-llama-cpp');
      return new FileEstimates(await Insights.from(await readGgufFileInfo(path), this.llama));
    })();
    estimates.catch(() => this.files.delete(path));
    this.files.set(path, { stamp, estimates });
    return estimates;
  }
}
