import { deploymentOwnership, type DeploymentLike, type OwnerReferenceLike } from './ownership';

const dep = (ownerReferences?: OwnerReferenceLike[], deleting = false): DeploymentLike => ({
  metadata: {
    name: 'svc',
    namespace: 'ns',
    uid: 'd',
    ...(ownerReferences ? { ownerReferences } : {}),
    ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
  },
});
const fsRef = (uid: string, controller = true) => ({
  apiVersion: 'fnmesh.io/v1alpha1',
  kind: 'FunctionService',
  name: 'svc',
  uid,
  controller,
});

describe('deploymentOwnership', () => {
  test('absent, and owned (a controller reference with this uid)', () => {
    expect(deploymentOwnership('me', undefined)).toEqual({ kind: 'absent' });
    expect(deploymentOwnership('me', dep([fsRef('me')]))).toEqual({ kind: 'owned' });
  });

  test('no controller: foreign, with the fix in the message', () => {
    const o = deploymentOwnership('me', dep());
    expect(o).toEqual({
      kind: 'foreign',
      deployment: 'ns/svc',
      deleting: false,
      message: expect.stringContaining('Deployment ns/svc already exists and was not created by this operator'),
    });
    expect(o.kind === 'foreign' && o.message).toContain(
      'delete or rename that Deployment, or rename the FunctionService',
    );
  });

  test('a reference to this FunctionService that is not a controller reference is not ownership', () => {
    expect(deploymentOwnership('me', dep([fsRef('me', false)])).kind).toBe('foreign');
  });

  test('another controller is named', () => {
    const o = deploymentOwnership(
      'me',
      dep([{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'r', controller: true }]),
    );
    expect(o).toMatchObject({ kind: 'foreign', controller: { kind: 'ReplicaSet', name: 'rs', uid: 'r' } });
    expect(o.kind === 'foreign' && o.message).toContain('is controlled by ReplicaSet rs (uid r)');
  });

  test('an earlier FunctionService of the same name: wait while it is deleted, else delete it', () => {
    const deleting = deploymentOwnership('me', dep([fsRef('old')], true));
    expect(deleting).toMatchObject({ kind: 'foreign', deleting: true });
    expect(deleting.kind === 'foreign' && deleting.message).toMatch(
      /earlier FunctionService of the same name \(uid old\).*being deleted/,
    );
    const stale = deploymentOwnership('me', dep([fsRef('old')]));
    expect(stale.kind === 'foreign' && stale.message).toContain(
      'delete that Deployment and the operator creates a new one',
    );
  });
});
