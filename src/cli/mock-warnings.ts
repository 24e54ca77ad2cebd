// The mock NVML's warnings (a bad control-file line, a refused op) on the CLI's stderr, each once:
// `vramguard <command>: mock NVML: <warning>` (watch's full screen holds them until it closes).
// `info --json` lists them too.
import * as nvml from '../nvml';

export class MockWarnings {
  private readonly seen = new Set<string>();

  constructor(
    private readonly command: string,
    private readonly read: () => string[] | null = nvml.mockWarnings,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  /** Prints the warnings not printed before and returns them. */
  report(): string[] {
    const fresh: string[] = [];
    for (const warning of this.read() ?? []) {
      if (this.seen.has(warning)) continue;
      this.seen.add(warning);
      fresh.push(warning);
      this.write(`vramguard ${this.command}: mock NVML: ${warning}\n`);
    }
    return fresh;
  }

  /** Every warning seen so far, in the order they came. */
  all(): string[] {
    return [...this.seen];
  }
}
