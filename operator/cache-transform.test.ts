import type { V1Deployment } from '@kubernetes/client-node';
import { slimDeployment, slimFunctionService } from './cache-transform';

describe('slimDeployment', () => {
  const full = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'svc',
      namespace: 'ns',
      uid: 'u',
      resourceVersion: '7',
      generation: 2,
      creationTimestamp: '2026-01-01T00:00:00Z',
      labels: { a: 'b' },
      annotations: {
        'deployment.kubernetes.io/revision': '1',
        'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}',
      },
      ownerReferences: [
        { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', name: 'svc', uid: 'f', controller: true },
      ],
      managedFields: [{ manager: 'fnmesh-operator', fieldsV1: { 'f:spec': {} } }],
    },
    spec: { replicas: 1, template: { spec: { containers: [{ name: 'function', image: 'x' }] } } },
    status: {
      observedGeneration: 2,
      replicas: 1,
      readyReplicas: 1,
      updatedReplicas: 1,
      availableReplicas: 1,
      conditions: [
        {
          type: 'Progressing',
          status: 'True',
          reason: 'NewReplicaSetAvailable',
          message: 'm',
          lastUpdateTime: 't',
          lastTransitionTime: 't',
        },
      ],
    },
  } as unknown as V1Deployment;

  test('keeps what drift, status and ownership read; drops managedFields, the last-applied annotation and timestamps', () => {
    expect(slimDeployment(full)).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: {
        name: 'svc',
        namespace: 'ns',
        uid: 'u',
        resourceVersion: '7',
        generation: 2,
        labels: { a: 'b' },
        annotations: { 'deployment.kubernetes.io/revision': '1' },
        ownerReferences: full.metadata!.ownerReferences,
      },
      spec: full.spec,
      status: {
        observedGeneration: 2,
        replicas: 1,
        readyReplicas: 1,
        updatedReplicas: 1,
        availableReplicas: 1,
        conditions: [{ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: 'm' }],
      },
    });
  });

  test('a Deployment being deleted keeps its deletionTimestamp; one without status has none', () => {
    const d = slimDeployment({ metadata: { name: 'a', deletionTimestamp: '2026-01-01T00:00:00Z' as unknown as Date } });
    expect(d).toEqual({ metadata: { name: 'a', deletionTimestamp: '2026-01-01T00:00:00Z' } });
  });
});

describe('slimFunctionService', () => {
  test('keeps identity, labels, spec and status; drops managedFields and owner references', () => {
    const slim = slimFunctionService({
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: {
        name: 'svc',
        namespace: 'ns',
        uid: 'u',
        generation: 3,
        resourceVersion: '9',
        managedFields: [{}],
        ownerReferences: [{}],
        labels: { x: 'y' },
      },
      spec: { replicas: 1 },
      status: { replicas: 1 },
    });
    expect(slim).toEqual({
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      metadata: { name: 'svc', namespace: 'ns', uid: 'u', generation: 3, resourceVersion: '9', labels: { x: 'y' } },
      spec: { replicas: 1 },
      status: { replicas: 1 },
    });
  });
});
