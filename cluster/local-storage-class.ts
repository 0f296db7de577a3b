/**
 * The one definition of `fnmesh cluster`'s storage: the default StorageClass `fnmesh-local`, whose claims the
 * node agent's local provisioner (cluster/local-provisioner.ts, which also creates the class when it starts,
 * as a provisioner's install ships its class) makes into folders of its run dir, and the annotations that the
 * Kubernetes PV controller, the scheduler and an external provisioner agree on. Light: no I/O.
 */
import type { V1StorageClass } from '@kubernetes/client-node';

/** The StorageClass that `fnmesh cluster` makes the cluster's default. */
export const LOCAL_STORAGE_CLASS = 'fnmesh-local';
/** Its provisioner: the node agent's local provisioner. */
export const LOCAL_PROVISIONER = 'fnmesh.io/local';

/** Set by the scheduler on a WaitForFirstConsumer claim: the node its first pod goes to. */
export const ANN_SELECTED_NODE = 'volume.kubernetes.io/selected-node';
/** Set by the PV controller on a claim an external provisioner is to provision (and its beta spelling). */
export const ANN_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
export const ANN_BETA_STORAGE_PROVISIONER = 'volume.beta.kubernetes.io/storage-provisioner';
/** Set by a provisioner on the PVs it made: the PV controller leaves their deletion to it. */
export const ANN_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
export const ANN_DEFAULT_CLASS = 'storageclass.kubernetes.io/is-default-class';

/** The StorageClass manifest (cluster-scoped): default, WaitForFirstConsumer, reclaim policy Delete. */
export function localStorageClass(): V1StorageClass {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name: LOCAL_STORAGE_CLASS,
      annotations: { [ANN_DEFAULT_CLASS]: 'true' },
      labels: { 'app.kubernetes.io/managed-by': 'fnmesh-cluster' },
    },
    provisioner: LOCAL_PROVISIONER,
    // the claim waits for its first pod, so that the volume is made on the node that pod runs on
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
    allowVolumeExpansion: false,
  };
}
