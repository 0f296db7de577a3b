import type { V1Container, V1Deployment, V1PodSpec } from '@kubernetes/client-node';
import { parseFunctionService } from '../common/manifest';
import { loadOperatorConfig } from './config';
import { OPERATOR_OWNED_ITEMS, desiredDeployment, type ClusterFunctionService } from './desired-deployment';
import { driftPaths, quantityValue } from './drift';

const cfg = loadOperatorConfig({
  FNMESH_SIDECAR_IMAGE: 'fnmesh:1',
  FNMESH_SIDECAR_NATS_URL: 'nats://nats:4222',
  FNMESH_SIDECAR_CPU_REQUEST: '0.05',
}).sidecar;
const fsInput = {
  apiVersion: 'fnmesh.io/v1alpha1',
  kind: 'FunctionService',
  metadata: { name: 'orders', namespace: 'shop' },
  spec: { container: { image: 'orders:1', args: ['--fast'] }, functions: [{ name: 'create' }] },
};
const fs = {
  ...parseFunctionService(fsInput, 't'),
  metadata: { name: 'orders', namespace: 'shop', uid: 'u1' },
} as ClusterFunctionService;

/** Roughly what the API server hands back: the applied object plus defaults and server fields. */
function asServerReturns(): V1Deployment {
  const d = structuredClone(desiredDeployment(fs, cfg));
  d.metadata!.resourceVersion = '42';
  d.metadata!.generation = 1;
  d.metadata!.managedFields = [{ manager: 'fnmesh-operator' }];
  d.spec!.strategy = { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } };
  pod(d).restartPolicy = 'Always';
  pod(d).dnsPolicy = 'ClusterFirst';
  for (const c of [...pod(d).containers, ...pod(d).initContainers!]) {
    c.imagePullPolicy = 'IfNotPresent';
    c.terminationMessagePath = '/dev/termination-log';
  }
  const side = sidecar(d);
  side.readinessProbe!.successThreshold = 1;
  side.readinessProbe!.httpGet!.scheme = 'HTTP';
  side.resources!.requests!.cpu = '50m'; // the server's canonical form of 0.05
  d.status = { replicas: 1 };
  return d;
}

function pod(d: V1Deployment): V1PodSpec {
  return d.spec!.template.spec!;
}
function fn(d: V1Deployment): V1Container {
  return pod(d).containers[0]!;
}
function sidecar(d: V1Deployment): V1Container {
  return pod(d).initContainers![0]!;
}

describe('driftPaths', () => {
  test('nothing to apply when the server holds the desired object plus defaults', () => {
    expect(driftPaths(desiredDeployment(fs, cfg), asServerReturns())).toEqual([]);
  });

  test.each<[string, (d: V1Deployment) => void, string[]]>([
    [
      'the sidecar stripped',
      (d) => (pod(d).initContainers = []),
      ['spec.template.spec.initContainers[fnmesh-sidecar]'],
    ],
    ['replicas edited', (d) => (d.spec!.replicas = 5), ['spec.replicas']],
    ['the image edited', (d) => (fn(d).image = 'orders:2'), ['spec.template.spec.containers[function].image']],
    [
      'an env var removed',
      (d) => (fn(d).env = fn(d).env!.slice(1)),
      ['spec.template.spec.containers[function].env[PORT]'],
    ],
    ['args changed', (d) => fn(d).args!.push('--slow'), ['spec.template.spec.containers[function].args']],
    ['a label removed', (d) => delete d.metadata!.labels!['fnmesh.io/service'], ['metadata.labels.fnmesh.io/service']],
    ['the owner reference removed', (d) => (d.metadata!.ownerReferences = []), ['metadata.ownerReferences[orders]']],
    [
      'a memory limit changed',
      (d) => (sidecar(d).resources!.limits!.memory = '256Mi'),
      ['spec.template.spec.initContainers[fnmesh-sidecar].resources.limits.memory'],
    ],
    [
      'the security context loosened',
      (d) => (sidecar(d).securityContext!.capabilities!.drop = []),
      ['spec.template.spec.initContainers[fnmesh-sidecar].securityContext.capabilities.drop'],
    ],
    [
      'an extra container added by hand (not ours to remove)',
      (d) => pod(d).containers.push({ name: 'debug', image: 'busybox' }),
      [],
    ],
  ])('%s', (_name, edit, paths) => {
    const observed = asServerReturns();
    edit(observed);
    expect(driftPaths(desiredDeployment(fs, cfg), observed)).toEqual(paths);
  });

  describe('the failure settings the sidecar reads', () => {
    const env = 'spec.template.spec.initContainers[fnmesh-sidecar].env';
    const withSpec = (spec: Record<string, unknown>): ClusterFunctionService =>
      ({
        ...parseFunctionService({ ...fsInput, spec: { ...fsInput.spec, ...spec } }, 't'),
        metadata: fs.metadata,
      }) as ClusterFunctionService;
    const drift = (next: ClusterFunctionService, observed = asServerReturns()) =>
      driftPaths(desiredDeployment(next, cfg), observed, { ownedNames: OPERATOR_OWNED_ITEMS });

    test('a new queueLength rolls the Deployment', () => {
      expect(drift(withSpec({ queueLength: 8 }))).toEqual([`${env}[FNMESH_QUEUE_LENGTH].value`]);
    });

    test('outlierDetection added, changed or taken out rolls the Deployment', () => {
      expect(drift(withSpec({ outlierDetection: { consecutiveFailures: 3 } }))).toEqual([
        `${env}[FNMESH_OUTLIER_DETECTION]`,
      ]);
      const ejecting = structuredClone(asServerReturns());
      sidecar(ejecting).env!.push({ name: 'FNMESH_OUTLIER_DETECTION', value: '{"consecutiveFailures":3}' });
      expect(drift(withSpec({ outlierDetection: { consecutiveFailures: 3 } }), ejecting)).toEqual([]);
      expect(drift(withSpec({ outlierDetection: { consecutiveFailures: 4 } }), ejecting)).toEqual([
        `${env}[FNMESH_OUTLIER_DETECTION].value`,
      ]);
      // Taken out of the spec: the variable is no longer desired, and only the operator sets it.
      expect(drift(fs, ejecting)).toEqual([`${env}[FNMESH_OUTLIER_DETECTION]`]);
      // Without ownedNames an extra item is never drift (someone else's).
      expect(driftPaths(desiredDeployment(fs, cfg), ejecting)).toEqual([]);
    });

    test("a variable someone else added to the sidecar is not the operator's to remove", () => {
      const observed = asServerReturns();
      sidecar(observed).env!.push({ name: 'HTTPS_PROXY', value: 'http://proxy:3128' });
      expect(drift(fs, observed)).toEqual([]);
    });

    test('gateway-only settings (retry, idempotent, circuitBreaker) change nothing in the Deployment', () => {
      const gatewayOnly = withSpec({
        retry: { attempts: 2, retryOn: ['reset'] },
        circuitBreaker: { consecutiveFailures: 9 },
        functions: [{ name: 'create', idempotent: true, retry: { attempts: 3 } }],
      });
      expect(drift(gatewayOnly)).toEqual([]);
    });
  });

  test('an env var whose value is "" (a service without functions: FNMESH_FUNCTIONS) comes back without one', () => {
    const none = { ...fs, spec: { ...fs.spec, functions: [] } } as ClusterFunctionService;
    const observed = structuredClone(desiredDeployment(none, cfg));
    const fnEnv = sidecar(observed).env!.find((e) => e.name === 'FNMESH_FUNCTIONS')!;
    expect(fnEnv.value).toBe('');
    delete fnEnv.value;
    expect(driftPaths(desiredDeployment(none, cfg), observed, { ownedNames: OPERATOR_OWNED_ITEMS })).toEqual([]);
  });

  test('nothing observed: everything differs', () => {
    expect(driftPaths({ a: 1 }, undefined)).toEqual(['']);
  });
});

describe('quantityValue', () => {
  test.each<[string, number | undefined]>([
    ['100m', 0.1],
    ['0.1', 0.1],
    ['1', 1],
    ['64Mi', 64 * 2 ** 20],
    ['1G', 1e9],
    ['1e3', 1000],
    ['12Q', undefined],
    ['0.5Ki', 512],
  ])('%s', (q, v) => {
    const got = quantityValue(q);
    if (v === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(v, 12);
  });
});
