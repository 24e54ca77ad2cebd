// Builds Snapshot objects from the addon's packed form: flat numbers in a Float64Array and strings
// interned once in an array beside it (native/js_snapshot.h). The field list is the addon's own
// (`snapshotLayout`): nothing here names a device or process field, so a field added natively needs no
// change here. Objects built in JS cost a fraction of objects built through N-API.
import type { NvmlReason } from './errors';
import type { Snapshot } from './types';

/** One field of the packed layout, as the addon describes it. */
export interface PackedField {
  name: string;
  kind:
    | 'number'
    | 'nullable'
    | 'boolean'
    | 'nullableString'
    | 'flags'
    | 'reading'
    | 'stringReading'
    | 'reason'
    | 'missingIf'
    | 'processes'
    | 'devices'
    | 'mig';
  flags?: string[];
}

export interface PackedLayout {
  snapshot: PackedField[];
  device: PackedField[];
  process: PackedField[];
  migInstance: PackedField[];
}

const KINDS = ['number', 'nullable', 'boolean', 'nullableString', 'flags', 'reading', 'stringReading', 'reason', 'missingIf', 'processes', 'devices', 'mig'];

// Kinds as small integers, for a switch the JIT compiles to a jump table.
const enum Kind {
  Number,
  Nullable,
  Boolean,
  NullableString,
  Flags,
  Reading,
  StringReading,
  Reason,
  MissingIf,
  Processes,
  Devices,
  Mig,
}

interface CompiledField {
  name: string;
  kind: Kind;
  flags: string[];
}

function compile(fields: PackedField[], where: string): CompiledField[] {
  return fields.map((field) => {
    const kind = KINDS.indexOf(field.kind);
    if (kind < 0) throw new Error(`vramguard: the addon's ${where} layout has a field of unknown kind ${JSON.stringify(field.kind)} (${field.name})`);
    return { name: field.name, kind, flags: field.flags ?? [] };
  });
}

/**
 * Decodes one reader's packed snapshots. `numbers` grows on demand; `strings` is the array the addon
 * appends to and must stay the same array for the reader's life.
 *
 * Two ways to the same objects: functions compiled once from the layout (each object one literal of a
 * fixed shape: a few microseconds per 8-device snapshot), and a loop over the layout, used where code
 * generation is disabled (`--disallow-code-generation-from-strings`) or when asked for (tests compare
 * the two).
 */
export class SnapshotDecoder {
  numbers = new Float64Array(1024);
  readonly strings: string[] = [];
  private readonly snapshotFields: CompiledField[];
  private readonly deviceFields: CompiledField[];
  private readonly processFields: CompiledField[];
  private readonly migInstanceFields: CompiledField[];
  private readonly codeNames = new Map<number, string>();
  private at = 0;

  private readonly compiled: CompiledDecoder | undefined;

  constructor(
    layout: PackedLayout,
    private readonly codeName: (returnValue: number) => string,
    options: { generic?: boolean } = {},
  ) {
    this.snapshotFields = compile(layout.snapshot, 'snapshot');
    this.deviceFields = compile(layout.device, 'device');
    this.processFields = compile(layout.process, 'process');
    this.migInstanceFields = compile(layout.migInstance, 'MIG instance');
    this.compiled = options.generic
      ? undefined
      : compileDecoder(this.snapshotFields, this.deviceFields, this.processFields, this.migInstanceFields);
  }

  /** Whether the compiled functions decode (false: the loop over the layout). */
  get isCompiled(): boolean {
    return this.compiled !== undefined;
  }

  /** Makes room for at least `slots` numbers (after the addon said it needs them). */
  grow(slots: number): void {
    let size = this.numbers.length;
    while (size < slots) size *= 2;
    this.numbers = new Float64Array(size);
  }

  /** The snapshot in `numbers` (as written by the addon's latest()/readOnce()). */
  decode(numbers: Float64Array = this.numbers, strings: string[] = this.strings): Snapshot {
    this.at = 0;
    if (this.compiled) return this.compiled.snapshot(numbers, strings, this) as Snapshot;
    return this.object(this.snapshotFields, numbers, strings, false) as unknown as Snapshot;
  }

  /** @internal For the compiled functions: the next slot to read, between calls. */
  get position(): number {
    return this.at;
  }
  set position(at: number) {
    this.at = at;
  }

  /** @internal For the compiled functions: the names of the bits set. */
  flagNames(names: string[], bits: number): string[] {
    const set: string[] = [];
    for (let b = 0; b < names.length; b++) if (bits & (1 << b)) set.push(names[b]!);
    return set;
  }

  /** @internal */
  reason(status: number, functionIndex: number, strings: string[]): NvmlReason {
    let code = this.codeNames.get(status);
    if (code === undefined) {
      code = this.codeName(status);
      this.codeNames.set(status, code);
    }
    return { code, returnValue: status, function: strings[functionIndex] ?? '' };
  }

  /** @internal For the compiled functions: a MIG mode as the snapshot names it. */
  migMode(mode: number): 'enabled' | 'disabled' {
    return mode === 1 ? 'enabled' : 'disabled';
  }

  /** Notes why `name` is absent and gives its value: null. */
  private absent(missing: Record<string, NvmlReason>, name: string, status: number, fn: number, strings: string[]): null {
    missing[name] = this.reason(status, fn, strings);
    return null;
  }

  private list(fields: CompiledField[], count: number, n: Float64Array, strings: string[], withMissing: boolean): unknown[] {
    const list = new Array<unknown>(count);
    for (let i = 0; i < count; i++) list[i] = this.object(fields, n, strings, withMissing);
    return list;
  }

  private object(fields: CompiledField[], n: Float64Array, strings: string[], withMissing: boolean): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    const missing: Record<string, NvmlReason> = {};
    for (let f = 0; f < fields.length; f++) {
      const field = fields[f]!;
      switch (field.kind) {
        case Kind.Number:
          o[field.name] = n[this.at++];
          break;
        case Kind.Nullable: {
          const v = n[this.at++]!;
          o[field.name] = Number.isNaN(v) ? null : v;
          break;
        }
        case Kind.Boolean:
          o[field.name] = n[this.at++] === 1;
          break;
        case Kind.NullableString: {
          const v = n[this.at++]!;
          o[field.name] = Number.isNaN(v) ? null : strings[v];
          break;
        }
        case Kind.Flags: {
          const bits = n[this.at++]!;
          const names: string[] = [];
          for (let b = 0; b < field.flags.length; b++) if (bits & (1 << b)) names.push(field.flags[b]!);
          o[field.name] = names;
          break;
        }
        case Kind.Reading:
        case Kind.StringReading: {
          const status = n[this.at++]!;
          const v = n[this.at++]!;
          o[field.name] = status === 0 ? (field.kind === Kind.Reading ? v : strings[v]) : this.absent(missing, field.name, status, v, strings);
          break;
        }
        case Kind.Reason: {
          const status = n[this.at++]!;
          const fn = n[this.at++]!;
          o[field.name] = status === 0 ? null : this.reason(status, fn, strings);
          break;
        }
        case Kind.MissingIf: {
          const status = n[this.at++]!;
          const fn = n[this.at++]!;
          if (status !== 0) missing[field.name] = this.reason(status, fn, strings);
          break;
        }
        case Kind.Processes: {
          const status = n[this.at++]!;
          const fn = n[this.at++]!;
          const count = n[this.at++]!;
          o[field.name] = status === 0 ? this.list(this.processFields, count, n, strings, false) : this.absent(missing, field.name, status, fn, strings);
          break;
        }
        case Kind.Devices: {
          o[field.name] = this.list(this.deviceFields, n[this.at++]!, n, strings, true);
          break;
        }
        case Kind.Mig: {
          const status = n[this.at++]!;
          const current = n[this.at++]!;
          const pending = n[this.at++]!;
          const listStatus = n[this.at++]!;
          const listFn = n[this.at++]!;
          const count = n[this.at++]!;
          if (status !== 0) {
            o[field.name] = this.absent(missing, field.name, status, current, strings);
            break;
          }
          const migMissing: Record<string, NvmlReason> = {};
          const instances = listStatus === 0 ? this.list(this.migInstanceFields, count, n, strings, true) : this.absent(migMissing, 'instances', listStatus, listFn, strings);
          o[field.name] = { mode: { current: this.migMode(current), pending: this.migMode(pending) }, instances, missing: migMissing };
          break;
        }
      }
    }
    if (withMissing) o.missing = missing;
    return o;
  }
}

// ---- Compiled decoding -------------------------------------------------------------------------------

type ObjectFn = (n: Float64Array, s: string[], d: SnapshotDecoder) => unknown;
interface CompiledDecoder {
  snapshot: ObjectFn;
}

/**
 * One function per object kind, generated from the layout: locals read in slot order, then one object
 * literal, so every object of a kind has one shape from the start. Names enter the source only as JSON
 * string literals. Undefined where code generation is disabled.
 */
function compileDecoder(
  snapshot: CompiledField[],
  device: CompiledField[],
  process: CompiledField[],
  migInstance: CompiledField[],
): CompiledDecoder | undefined {
  const flags: string[][] = [];
  const build = (fields: CompiledField[], withMissing: boolean, nested: string): string => {
    const lines = ['let a = d.position, t = 0, v = 0, c = 0;', 'const m = {};'];
    const props: string[] = [];
    fields.forEach((field, i) => {
      const key = JSON.stringify(field.name);
      const f = `f${i}`;
      switch (field.kind) {
        case Kind.Number:
          lines.push(`const ${f} = n[a++];`);
          break;
        case Kind.Nullable:
          lines.push(`v = n[a++]; const ${f} = v !== v ? null : v;`);
          break;
        case Kind.Boolean:
          lines.push(`const ${f} = n[a++] === 1;`);
          break;
        case Kind.NullableString:
          lines.push(`v = n[a++]; const ${f} = v !== v ? null : s[v];`);
          break;
        case Kind.Flags:
          flags.push(field.flags);
          lines.push(`const ${f} = d.flagNames(F[${flags.length - 1}], n[a++]);`);
          break;
        case Kind.Reading:
        case Kind.StringReading: {
          const value = field.kind === Kind.Reading ? 'v' : 's[v]';
          lines.push(`t = n[a++]; v = n[a++]; const ${f} = t === 0 ? ${value} : ((m[${key}] = d.reason(t, v, s)), null);`);
          break;
        }
        case Kind.Reason:
          lines.push(`t = n[a++]; v = n[a++]; const ${f} = t === 0 ? null : d.reason(t, v, s);`);
          break;
        case Kind.MissingIf:
          lines.push(`t = n[a++]; v = n[a++]; if (t !== 0) m[${key}] = d.reason(t, v, s);`);
          return; // no property of its own
        case Kind.Mig:
          lines.push(
            `t = n[a++]; v = n[a++]; const ${f}p = n[a++], ${f}t = n[a++], ${f}v = n[a++]; c = n[a++]; let ${f} = null;`,
            `if (t === 0) { const mm = {}; let list = null;`,
            `  if (${f}t === 0) { list = new Array(c); for (let i = 0; i < c; i++) { d.position = a; list[i] = M(n, s, d); a = d.position; } }`,
            `  else mm.instances = d.reason(${f}t, ${f}v, s);`,
            `  ${f} = { mode: { current: d.migMode(v), pending: d.migMode(${f}p) }, instances: list, missing: mm }; }`,
            `else m[${key}] = d.reason(t, v, s);`,
          );
          break;
        case Kind.Processes:
        case Kind.Devices: {
          const counted = field.kind === Kind.Devices ? 'c = n[a++]; t = 0;' : 't = n[a++]; v = n[a++]; c = n[a++];';
          const item = field.kind === Kind.Devices ? 'D' : 'P';
          lines.push(
            `${counted} let ${f} = null;`,
            `if (t === 0) { ${f} = new Array(c); for (let i = 0; i < c; i++) { d.position = a; ${f}[i] = ${item}(n, s, d); a = d.position; } }`,
            `else m[${key}] = d.reason(t, v, s);`,
          );
          break;
        }
      }
      props.push(`${key}: ${f}`);
    });
    if (withMissing) props.push('"missing": m');
    lines.push('d.position = a;', `return { ${props.join(', ')} };`);
    return `function ${nested}(n, s, d) {\n${lines.join('\n')}\n}`;
  };
  try {
    const source = [
      '"use strict";',
      build(process, false, 'P'),
      build(migInstance, true, 'M'),
      build(device, true, 'D'),
      build(snapshot, false, 'S'),
      'return S;',
    ].join('\n');
    const snapshotFn = new Function('F', source)(flags) as ObjectFn;
    return { snapshot: snapshotFn };
  } catch (error) {
    if (error instanceof EvalError) return undefined; // code generation from strings is disabled here
    throw error;
  }
}
