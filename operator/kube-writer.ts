/**
 * The two writes a reconcile makes, on client-node 1.x: a server-side apply of the Deployment (field
 * manager `fnmesh-operator`, force) and a merge patch of the FunctionService's status subresource.
 *
 * client-node 1.4 picks a patch's Content-Type itself (JSON patch); `setHeaderOptions` adds a middleware
 * that overrides it per call (`application/apply-patch+yaml` for server-side apply: JSON is YAML).
 */
import { PatchStrategy, setHeaderOptions, type AppsV1Api, type CustomObjectsApi, type V1Deployment } from '@kubernetes/client-node';
import { API_VERSION } from '../common/manifest';
import { FIELD_MANAGER } from './desired-deployment';
import type { FunctionServiceStatus } from './status';

export const GROUP = API_VERSION.split('/')[0]!;
export const VERSION = API_VERSION.split('/')[1]!;
export const PLURAL = 'functionservices';

export interface KubeWriter {
  /** Server-side applies the Deployment; resolves with the Deployment as stored. */
  applyDeployment(desired: V1Deployment): Promise<V1Deployment>;
  /** Merge-patches the status subresource; resolves with the object's new resourceVersion. */
  patchStatus(namespace: string, name: string, status: FunctionServiceStatus): Promise<string | undefined>;
}

const APPLY = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function kubeWriter(apps: AppsV1Api, custom: CustomObjectsApi): KubeWriter {
  return {
    async applyDeployment(desired) {
      const { name, namespace } = desired.metadata as { name: string; namespace: string };
      return apps.patchNamespacedDeployment({ name, namespace, body: desired, fieldManager: FIELD_MANAGER, force: true }, APPLY);
    },
    async patchStatus(namespace, name, status) {
      const out = (await custom.patchNamespacedCustomObjectStatus(
        { group: GROUP, version: VERSION, namespace, plural: PLURAL, name, body: { status }, fieldManager: FIELD_MANAGER },
        MERGE,
      )) as { metadata?: { resourceVersion?: string } };
      return out?.metadata?.resourceVersion;
    },
  };
}
