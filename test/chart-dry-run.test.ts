/**
 * The chart's rendered manifests, for each NATS mode, taken by a real API server (v1.35.4, the tests' control
 * plane): `kubectl apply --dry-run=server` runs admission, defaulting and strict field validation on every
 * object, so a misspelt field or a wrong type in a template fails here. The CRD (--include-crds) goes with them.
 * ServiceMonitors are left out (metrics.serviceMonitor.enabled is off in every case): their CRD belongs to the
 * Prometheus Operator.
 */
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { CI_VALUES, renderChart } from './helpers/helm';
import path from 'node:path';

jest.setTimeout(120_000);

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane({ kwokNode: false });
  const ns = await cp.kubectl(['create', 'namespace', 'fnmesh']);
  if (ns.code !== 0) throw new Error(`kubectl create namespace fnmesh failed: ${ns.stderr}`);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
});

const MODES: [string, string[]][] = [
  ['the default values', []],
  ...CI_VALUES.map((f): [string, string[]] => [path.basename(f), [f]]),
];

test.each(MODES)('the API server takes every object rendered with %s', async (_, valuesFiles) => {
  const { text, objects } = await renderChart({ valuesFiles, includeCrds: true });
  const r = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], text);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  // one "(server dry run)" line per object: none was skipped
  const lines = r.stdout.trim().split('\n');
  expect(lines).toHaveLength(objects.length);
  for (const line of lines) expect(line).toMatch(/ \(server dry run\)$/);
  expect(objects.map((o) => o.kind)).toEqual(
    expect.arrayContaining(['CustomResourceDefinition', 'Deployment', 'Service', 'NetworkPolicy', 'Pod']),
  );
});

test('a template mistake is refused: an unknown field in a Deployment', async () => {
  const { text } = await renderChart();
  const broken = text.replace('terminationGracePeriodSeconds:', 'terminationGracePeriodSecondz:');
  const r = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], broken);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('unknown field "spec.template.spec.terminationGracePeriodSecondz"');
});
