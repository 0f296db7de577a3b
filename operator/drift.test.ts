import type { V1Container, V1Deployment, V1PodSpec } from '@kubernetes/client-node';
import { parseFunctionService } from '../common/manifest';
import { loadOperatorConfig } from './config';
import { desiredDeployment, type ClusterFunctionService } from './desired-deployment';
import { driftPaths, quantityValue } from './drift';

const cfg = loadOperatorConfig({
  FNMESH_SIDECAR_IMAGE: 'fnmesh:1',
  FNMESH_SIDECAR_NATS_URL: 'nats://nats:4222',
  FNMESH_SIDECAR_CPU_REQUEST: '0.05',
}).sidecar;
const fs = {
  ...parseFunctionService(
    {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'orders', namespace: 'shop' },
      spec: { container: { image: 'orders:1', args: ['--fast'] }, functions: [{ name: 'create' }] },
    },
    't',
  ),
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
