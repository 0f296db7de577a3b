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

// The other branches of the templates: token and no auth, a NodePort, the optional parts.
const VARIANTS: [string, string[]][] = [
  ['bundled NATS with token auth', ['nats.auth=token', 'nats.token.secretName=nats-token']],
  ['bundled NATS without auth, 1 server', ['nats.auth=none', 'nats.bundled.replicas=1']],
  [
    'external NATS with token auth and the gateway creds of your own',
    [
      'nats.mode=external',
      'nats.external.urls[0]=nats://nats.example:4222',
      'nats.auth=token',
      'nats.token.secretName=t',
    ],
  ],
  [
    'external NATS, JWT auth, gateway .creds from a Secret of yours',
    [
      'nats.mode=external',
      'nats.external.urls[0]=nats://nats.example:4222',
      'nats.external.gatewayCredentials.secretName=gw',
    ],
  ],
  [
    'a NodePort, HPA, digests, placement, extra env, resources',
    [
      'gateway.service.type=NodePort',
      'gateway.service.nodePort=30080',
      'gateway.autoscaling.enabled=true',
      'gateway.resources.requests.cpu=100m',
      `image.digest=sha256:${'a'.repeat(64)}`,
      `sidecar.image.digest=sha256:${'b'.repeat(64)}`,
      'gateway.nodeSelector.disk=ssd',
      'gateway.tolerations[0].key=dedicated',
      'gateway.tolerations[0].operator=Exists',
      'gateway.topologySpreadConstraints[0].maxSkew=1',
      'gateway.topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname',
      'gateway.topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway',
      'operator.extraEnv[0].name=FNMESH_WATCH_NAMESPACE',
      'operator.extraEnv[0].value=apps',
      'sidecar.resources.limits.cpu=500m',
      'nats.bundled.resources.limits.memory=1Gi',
      'nats.bundled.jetstream.storageClassName=fast',
      'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring',
      'gateway.jwt.existingSecret=jwt',
      'gateway.delegationKey.existingSecret=delegation',
      'imagePullSecrets[0]=regcred',
    ],
  ],
];

test.each(VARIANTS)('the API server takes every object rendered with %s', async (_, set) => {
  const { text, objects } = await renderChart({ set });
  const r = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], text);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout.trim().split('\n')).toHaveLength(objects.length);
});

test('a template mistake is refused: an unknown field in a Deployment', async () => {
  const { text } = await renderChart();
  const broken = text.replace('terminationGracePeriodSeconds:', 'terminationGracePeriodSecondz:');
  const r = await cp.kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', '-'], broken);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toContain('unknown field "spec.template.spec.terminationGracePeriodSecondz"');
});
