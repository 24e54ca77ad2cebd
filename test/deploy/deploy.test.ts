// deploy/: the files parse, say what they must (restart policy, hardening, probes on /health, a port
// named metrics, resources), and every metric the Grafana dashboard queries is one vramguard emits:
// `vramguard serve --processes` (scraped from the real CLI on the mock) or guard.metrics(registry).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { VramGuard } from '../../src/guard';
import { mockLibraryPath } from '../../src/testing';
import { parseExposition } from '../cli/exposition';
import { CliProcess, ScenarioDir, twoGpus } from '../cli/helpers';

const root = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, 'deploy', path), 'utf8');

/** INI-style systemd unit: section -> key -> values (keys may repeat). */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const section = /^\[(\w+)\]$/.exec(line);
    if (section) {
      current = new Map();
      sections.set(section[1]!, current);
      return;
    }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!kv || !current) throw new Error(`line ${i + 1}: not a key=value in a section: ${raw}`);
    current.set(kv[1]!, [...(current.get(kv[1]!) ?? []), kv[2]!]);
  });
  return sections;
}

describe('systemd unit', () => {
  it('runs vramguard serve with a restart policy and hardening', () => {
    const unit = parseUnit(read('systemd/vramguard-exporter.service'));
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    const service = unit.get('Service')!;
    expect(service.get('ExecStart')![0]).toMatch(/^\/usr\/bin\/env vramguard serve --listen \S+:9400/);
    expect(service.get('Restart')).toEqual(['on-failure']);
    expect(service.get('RestartPreventExitStatus')).toEqual(['2']); // no driver: retrying will not help
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['DynamicUser', 'yes'],
      ['PrivateTmp', 'yes'],
      ['CapabilityBoundingSet', ''],
    ]) {
      expect(service.get(key!), key).toEqual([value]);
    }
    expect(service.has('MemoryDenyWriteExecute')).toBe(false); // V8's JIT needs W+X pages
    expect(unit.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
  });
});

describe('Kubernetes manifests', () => {
  const docs = parseAllDocuments(read('kubernetes/vramguard-exporter.yaml')).map((d) => {
    if (d.errors.length > 0) throw d.errors[0];
    return d.toJS() as { kind: string; [key: string]: any };
  });
  const byKind = (kind: string) => docs.find((d) => d.kind === kind)!;

  it('has a DaemonSet with a port named metrics, /health probes, requests and limits', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'DaemonSet', 'Service', 'ServiceMonitor']);
    const pod = byKind('DaemonSet').spec.template.spec;
    const [container] = pod.containers;
    expect(container.args.slice(0, 3)).toEqual(['serve', '--listen', '0.0.0.0:9400']);
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 9400, protocol: 'TCP' }]);
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe.httpGet).toEqual({ path: '/health', port: 'metrics' });
    }
    for (const kind of ['requests', 'limits']) {
      expect(Object.keys(container.resources[kind]).sort()).toEqual(['cpu', 'memory']);
    }
    expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true });
    expect(byKind('DaemonSet').spec.selector.matchLabels).toEqual(byKind('DaemonSet').spec.template.metadata.labels);
  });

  it('has a Service and a ServiceMonitor on the port named metrics, selecting the DaemonSet', () => {
    const labels = byKind('DaemonSet').spec.template.metadata.labels;
    const service = byKind('Service');
    expect(service.spec.selector).toEqual(labels);
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 9400, targetPort: 'metrics', protocol: 'TCP' }]);
    const monitor = byKind('ServiceMonitor');
    expect(monitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(monitor.spec.selector.matchLabels).toEqual(service.metadata.labels);
    expect(monitor.spec.endpoints).toEqual([expect.objectContaining({ port: 'metrics', path: '/metrics' })]);
  });
});

describe('Grafana dashboard', () => {
  let dir: ScenarioDir;
  let emitted: Set<string>;
  beforeAll(async () => {
    dir = new ScenarioDir();
    const scenario = dir.write('two.json', twoGpus());
    // What `vramguard serve --processes` emits...
    const cli = new CliProcess(['serve', '--listen', '127.0.0.1:0', '--processes', '--mock', scenario]);
    await cli.until(() => /listening on http:\/\/127\.0\.0\.1:\d+\/metrics/.test(cli.stderr), 'serve to listen');
    const port = /listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(cli.stderr)![1];
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    await cli.stop('SIGTERM');
    emitted = new Set(parseExposition(body).keys());
    // ...and what guard.metrics(registry) emits (on the same mock).
    process.env.VRAMGUARD_NVML_LIBRARY = mockLibraryPath();
    process.env.VRAMGUARD_MOCK_SCENARIO = scenario;
    const registry = new Registry();
    const guard = new VramGuard({ quota: { hard: '20GiB' }, interval: '20ms' }).metrics(registry);
    for (const name of parseExposition(await registry.metrics()).keys()) emitted.add(name);
    await guard.close();
  }, 60_000);
  afterAll(() => dir?.cleanup());

  it('parses, and queries only metrics vramguard emits', () => {
    const dashboard = JSON.parse(read('grafana/vramguard-dashboard.json')) as {
      panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ query: unknown }> };
    };
    const exprs = [
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.map((v) => (typeof v.query === 'string' ? v.query : '')),
    ];
    const queried = new Set(exprs.flatMap((e) => e.match(/\bvramguard_[a-z0-9_]+/g) ?? []).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((name) => !emitted.has(name))).toEqual([]);
    // The panels the issue asks for are there.
    const titles = dashboard.panels.map((p) => p.title.toLowerCase()).join(' | ');
    for (const topic of ['memory', 'utilization', 'process', 'evictions', 'sample age']) expect(titles).toContain(topic);
  });
});
