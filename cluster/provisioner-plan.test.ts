import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { LOCAL_PROVISIONER, LOCAL_STORAGE_CLASS, localStorageClass } from './local-storage-class';
import { desiredVolume, provisionerActions, volumeNameOf, type ProvisionerView } from './provisioner-plan';

const NODE = 'fnmesh-local';
const ROOT = '/run/fnmesh-cluster-x/volumes';
const defaultClass = localStorageClass();

function claim(over: {
  name?: string;
  uid?: string;
  annotations?: Record<string, string>;
  spec?: V1PersistentVolumeClaim['spec'];
  phase?: string;
  deleting?: boolean;
}): V1PersistentVolumeClaim {
  return {
    metadata: {
      name: over.name ?? 'data-nats-0',
      namespace: 'fnmesh',
      uid: over.uid ?? 'u-1',
      annotations: over.annotations ?? { 'volume.kubernetes.io/selected-node': NODE },
      ...(over.deleting ? { deletionTimestamp: new Date() } : {}),
    },
    spec: over.spec ?? {
      storageClassName: LOCAL_STORAGE_CLASS,
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '10Gi' } },
    },
    status: { phase: over.phase ?? 'Pending' },
  };
}

function view(over: Partial<ProvisionerView>): ProvisionerView {
  return { nodeName: NODE, volumesDir: ROOT, claims: [], volumes: [], classes: [defaultClass], ...over };
}

describe('the StorageClass', () => {
  test('the default class, provisioned by fnmesh.io/local, WaitForFirstConsumer, Delete', () => {
    expect(localStorageClass()).toMatchObject({
      apiVersion: 'storage.k8s.io/v1',
      kind: 'StorageClass',
      metadata: { name: 'fnmesh-local', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'fnmesh.io/local',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    });
  });
});

describe('provisionerActions: provisioning', () => {
  test('a claim the scheduler gave this node: a folder of its own and a PV pre-bound to it', () => {
    const actions = provisionerActions(view({ claims: [claim({})] }));
    expect(actions).toEqual([
      {
        kind: 'provision',
        claim: { namespace: 'fnmesh', name: 'data-nats-0', uid: 'u-1' },
        dir: `${ROOT}/pvc-u-1`,
        volume: {
          apiVersion: 'v1',
          kind: 'PersistentVolume',
          metadata: { name: 'pvc-u-1', annotations: { 'pv.kubernetes.io/provisioned-by': 'fnmesh.io/local' } },
          spec: {
            capacity: { storage: '10Gi' },
            accessModes: ['ReadWriteOnce'],
            volumeMode: 'Filesystem',
            persistentVolumeReclaimPolicy: 'Delete',
            storageClassName: 'fnmesh-local',
            claimRef: {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              namespace: 'fnmesh',
              name: 'data-nats-0',
              uid: 'u-1',
            },
            hostPath: { path: `${ROOT}/pvc-u-1`, type: 'Directory' },
            nodeAffinity: {
              required: {
                nodeSelectorTerms: [
                  { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [NODE] }] },
                ],
              },
            },
          },
        },
      },
    ]);
  });

  test('idempotent: nothing once its PV exists (by claimRef or by name), or once the claim is bound', () => {
    const c = claim({});
    const made = desiredVolume(c, defaultClass, NODE, `${ROOT}/pvc-u-1`);
    expect(provisionerActions(view({ claims: [c], volumes: [made] }))).toEqual([]);
    const renamed = { ...made, metadata: { ...made.metadata, name: 'other' } };
    expect(provisionerActions(view({ claims: [c], volumes: [renamed] }))).toEqual([]);
    const sameName = { ...made, spec: { ...made.spec, claimRef: undefined } };
    expect(provisionerActions(view({ claims: [c], volumes: [sameName] }))).toEqual([]);
    expect(provisionerActions(view({ claims: [claim({ phase: 'Bound' })] }))).toEqual([]);
    const preBound = claim({ spec: { ...c.spec, volumeName: 'some-pv' } });
    expect(provisionerActions(view({ claims: [preBound] }))).toEqual([]);
  });

  test("not this provisioner's, not this node's, not selected yet, or being deleted: nothing", () => {
    const other: V1StorageClass = { metadata: { name: 'fast' }, provisioner: 'ebs.csi.aws.com' };
    const claims = [
      claim({ uid: 'a', spec: { storageClassName: 'fast', resources: { requests: { storage: '1Gi' } } } }),
      claim({ uid: 'b', annotations: { 'volume.kubernetes.io/selected-node': 'other-node' } }),
      claim({ uid: 'c', annotations: {} }),
      claim({ uid: 'd', deleting: true }),
      // handed to another provisioner by the PV controller, whatever the class says
      claim({
        uid: 'e',
        annotations: {
          'volume.kubernetes.io/selected-node': NODE,
          'volume.kubernetes.io/storage-provisioner': 'rancher.io/local-path',
        },
      }),
      // no class at all (a claim meant for a pre-made PV)
      claim({ uid: 'f', spec: { resources: { requests: { storage: '1Gi' } } } }),
    ];
    expect(provisionerActions(view({ claims, classes: [defaultClass, other] }))).toEqual([]);
  });

  test('another class of this provisioner, or a claim handed to it: its reclaim policy and its name', () => {
    const keep: V1StorageClass = {
      metadata: { name: 'keep' },
      provisioner: LOCAL_PROVISIONER,
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Retain',
    };
    const c = claim({
      spec: { storageClassName: 'keep', accessModes: ['ReadWriteMany'], resources: { requests: { storage: '1Mi' } } },
    });
    const [a] = provisionerActions(view({ claims: [c], classes: [defaultClass, keep] }));
    expect(a).toMatchObject({
      kind: 'provision',
      volume: {
        spec: {
          storageClassName: 'keep',
          persistentVolumeReclaimPolicy: 'Retain',
          accessModes: ['ReadWriteMany'],
          capacity: { storage: '1Mi' },
        },
      },
    });
    const handed = claim({
      annotations: {
        'volume.kubernetes.io/selected-node': NODE,
        'volume.beta.kubernetes.io/storage-provisioner': LOCAL_PROVISIONER,
      },
      spec: { storageClassName: 'gone', resources: { requests: { storage: '1Gi' } } },
    });
    expect(provisionerActions(view({ claims: [handed] }))).toMatchObject([
      { kind: 'provision', volume: { spec: { persistentVolumeReclaimPolicy: 'Delete', storageClassName: 'gone' } } },
    ]);
  });

  test('what a folder cannot be: refused with the reason and the fix', () => {
    const spec = { storageClassName: LOCAL_STORAGE_CLASS, resources: { requests: { storage: '1Gi' } } };
    const immediate: V1StorageClass = { metadata: { name: 'now' }, provisioner: LOCAL_PROVISIONER };
    const claims = [
      claim({ uid: 's', spec: { ...spec, selector: { matchLabels: { disk: 'ssd' } } } }),
      claim({ uid: 'b', spec: { ...spec, volumeMode: 'Block' } }),
      claim({ uid: 'd', spec: { ...spec, dataSource: { kind: 'VolumeSnapshot', name: 'snap' } } }),
      // an Immediate class never gets a selected node: refused whatever the annotations
      claim({ uid: 'i', annotations: {}, spec: { ...spec, storageClassName: 'now' } }),
    ];
    const messages = provisionerActions(view({ claims, classes: [defaultClass, immediate] })).map((a) =>
      a.kind === 'refuse' ? `${a.claim.uid}: ${a.message}` : `unexpected ${a.kind}`,
    );
    expect(messages).toEqual([
      's: claim Selector is not supported: fnmesh.io/local makes a new volume for each claim; remove spec.selector, or create a PersistentVolume that matches it',
      'b: volumeMode Block is not supported: fnmesh.io/local makes folders; use volumeMode Filesystem',
      'd: a data source (VolumeSnapshot) is not supported: fnmesh.io/local makes empty folders; remove spec.dataSource',
      "i: StorageClass now has volumeBindingMode Immediate: fnmesh.io/local makes the folder on the node of the claim's first pod, so its class needs volumeBindingMode WaitForFirstConsumer",
    ]);
  });
});

describe('provisionerActions: deleting', () => {
  const released = (over: Partial<V1PersistentVolume['spec']> = {}, node = NODE): V1PersistentVolume => {
    const v = desiredVolume(claim({}), defaultClass, node, `${ROOT}/pvc-u-1`);
    return { ...v, spec: { ...v.spec, ...over }, status: { phase: 'Released' } };
  };

  test('a Released PV of this node with policy Delete: its folder removed, the PV deleted', () => {
    expect(provisionerActions(view({ volumes: [released()] }))).toEqual([
      { kind: 'delete', volume: 'pvc-u-1', dir: `${ROOT}/pvc-u-1` },
    ]);
  });

  test('Bound, Retain, being deleted, made by another provisioner or for another node: kept', () => {
    const bound = { ...released(), status: { phase: 'Bound' } };
    const deleting = { ...released(), metadata: { ...released().metadata, deletionTimestamp: new Date() } };
    const foreign = { ...released(), metadata: { name: 'x', annotations: { 'pv.kubernetes.io/provisioned-by': 'y' } } };
    const volumes = [
      bound,
      released({ persistentVolumeReclaimPolicy: 'Retain' }),
      deleting,
      foreign,
      released({}, 'other-node'),
    ];
    expect(provisionerActions(view({ volumes }))).toEqual([]);
  });

  test('a folder outside its volumes folder is never removed (the PV is deleted alone)', () => {
    for (const p of ['/etc', `${ROOT}`, `${ROOT}/../x`, `${ROOT}/a/b`, 'relative'])
      expect(provisionerActions(view({ volumes: [released({ hostPath: { path: p } })] }))).toEqual([
        { kind: 'delete', volume: 'pvc-u-1' },
      ]);
  });

  test('the PV name of a claim', () => {
    expect(volumeNameOf('0b5e')).toBe('pvc-0b5e');
  });
});
