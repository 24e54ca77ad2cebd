// A strict parser for the Prometheus text exposition format (0.0.4) and the OpenMetrics text format
// (1.0.0), enough to read back what `vramguard serve` writes and to reject anything malformed:
// HELP and TYPE before samples, each family once, valid names, quoted and escaped label values, numbers.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY;
  if (text === '-Inf') return Number.NEGATIVE_INFINITY;
  if (text === 'NaN') return Number.NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

function parseLabels(text: string, where: string): { labels: Record<string, string>; rest: string } {
  const labels: Record<string, string> = {};
  let i = 0;
  if (text[i] !== '{') return { labels, rest: text };
  i++;
  for (;;) {
    if (text[i] === '}') {
      i++;
      break;
    }
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: bad labels`);
    const name = text.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (name in labels) throw new Error(`${where}: label ${name} twice`);
    i = eq + 1;
    if (text[i] !== '"') throw new Error(`${where}: label value not quoted`);
    i++;
    let value = '';
    for (;;) {
      const c = text[i];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') {
        i++;
        break;
      }
      if (c === '\\') {
        const next = text[i + 1];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`${where}: bad escape \\${next ?? ''}`);
        i += 2;
        continue;
      }
      value += c;
      i++;
    }
    labels[name] = value;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`${where}: expected , or } after a label`);
  }
  return { labels, rest: text.slice(i) };
}

/** Parses an exposition; `openMetrics` applies that format's rules (# EOF, counter sample suffixes). */
export function parseExposition(body: string, options: { openMetrics?: boolean } = {}): Map<string, Family> {
  const families = new Map<string, Family>();
  const lines = body.split('\n');
  if (lines.pop() !== '') throw new Error('the exposition must end with a newline');
  if (options.openMetrics) {
    if (lines.pop() !== '# EOF') throw new Error('an OpenMetrics exposition must end with # EOF');
  }
  let current: Family | undefined;
  const familyOf = (sampleName: string): Family | undefined => {
    if (!current) return undefined;
    if (sampleName === current.name) return current;
    if (current.type === 'counter' && options.openMetrics && sampleName === `${current.name}_total`) return current;
    // Histogram and summary families carry their series under suffixed names.
    const suffixes = current.type === 'histogram' ? ['_bucket', '_sum', '_count'] : current.type === 'summary' ? ['_sum', '_count'] : [];
    if (suffixes.some((suffix) => sampleName === `${current!.name}${suffix}`)) return current;
    return undefined;
  };
  lines.forEach((line, index) => {
    const where = `line ${index + 1}`;
    if (line === '') {
      if (options.openMetrics) throw new Error(`${where}: empty line in OpenMetrics`);
      return;
    }
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!match) {
        if (options.openMetrics && !/^# UNIT /.test(line)) throw new Error(`${where}: unknown comment ${line}`);
        return;
      }
      const [, kind, name, rest] = match as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name ${name}`);
      let family = families.get(name);
      if (!family) {
        family = { name, type: '', help: '', samples: [] };
        families.set(name, family);
      } else if (family !== current) {
        throw new Error(`${where}: family ${name} appears twice`);
      }
      current = family;
      if (kind === 'HELP') family.help = rest;
      else {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped', 'unknown', 'info', 'stateset'].includes(rest)) {
          throw new Error(`${where}: bad type ${rest}`);
        }
        family.type = rest;
      }
      return;
    }
    const nameMatch = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!nameMatch) throw new Error(`${where}: bad sample line ${JSON.stringify(line)}`);
    const name = nameMatch[1]!;
    const family = familyOf(name);
    if (!family) throw new Error(`${where}: sample ${name} outside its family's HELP/TYPE block`);
    if (!family.help || !family.type) throw new Error(`${where}: ${family.name} lacks HELP or TYPE`);
    const { labels, rest } = parseLabels(line.slice(name.length), where);
    const fields = rest.trim().split(/\s+/);
    if (!rest.startsWith(' ') || fields.length < 1 || fields.length > 2) throw new Error(`${where}: bad sample ${JSON.stringify(line)}`);
    family.samples.push({ name, labels, value: parseValue(fields[0]!, where) });
  });
  return families;
}

/** The samples named `name` (a family's own, or a histogram's name_bucket/_sum/_count). */
export function samples(families: Map<string, Family>, name: string): Sample[] {
  const own = families.get(name);
  if (own) return own.type === 'histogram' || own.type === 'summary' ? own.samples.filter((s) => s.name === name) : own.samples;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  return base ? (families.get(base)?.samples ?? []).filter((s) => s.name === name) : [];
}

/** The value of the one sample matching `labels` (a subset). */
export function valueOf(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number | undefined {
  const matching = samples(families, name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matching.length > 1) throw new Error(`${name}: ${matching.length} samples match ${JSON.stringify(labels)}`);
  return matching[0]?.value;
}
