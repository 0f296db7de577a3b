/**
 * The API calls a reconcile makes, on the plain-JSON client (common/kube-client.ts: keep-alive
 * connections, no typed models): a server-side apply of the Deployment (field manager `fnmesh-operator`),
 * a merge patch of the FunctionService's status subresource, and a live read of a Deployment the informer
 * cache does not hold (it holds only Deployments with the operator's label). For NATS credentials
 * (creds-minter.ts, trust-store.ts): reads, server-side applies, a create of Secrets and
 * a merge patch with a resourceVersion precondition (a trust Secret of an older operator gets its new key).
 */
import type { V1Deployment, V1Secret } from '@kubernetes/client-node';
import { functionServicePath } from '../common/crd-names';
import { KubeApiError, type KubeClient } from '../common/kube-client';
import { FIELD_MANAGER } from './desired-deployment';
import type { FunctionServiceStatus } from './status';

export interface ApplyOptions {
  /**
   * Take over fields other field managers hold (`kubectl scale`, an edit): only for a Deployment this
   * operator controls. Without it a create that races with someone else's Deployment fails with a conflict
   * instead of taking it over.
   */
  force: boolean;
}

export interface KubeWriter {
  /** Server-side applies the Deployment; resolves with the Deployment as stored. */
  applyDeployment(desired: V1Deployment, options: ApplyOptions): Promise<V1Deployment>;
  /** Merge-patches the status subresource; resolves with the object's new resourceVersion. */
  patchStatus(namespace: string, name: string, status: FunctionServiceStatus): Promise<string | undefined>;
  /** Reads a Deployment from the API server; undefined when there is none. */
  readDeployment(namespace: string, name: string): Promise<V1Deployment | undefined>;
}

/** The Secret calls (the operator never lists or watches Secrets: it reads the ones it names). */
export interface SecretWriter {
  /** Reads a Secret; undefined when there is none. */
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  /** Server-side applies a Secret the operator owns (force: the operator is its only writer). */
  applySecret(desired: V1Secret): Promise<V1Secret>;
  /** Creates a Secret; undefined when one of that name exists already (409 AlreadyExists). */
  createSecret(secret: V1Secret): Promise<V1Secret | undefined>;
  /**
   * Adds `data` (base64 values) to the Secret if it is still at `resourceVersion` (a merge patch with that
   * precondition); undefined when someone changed it since (409 Conflict): read it again.
   */
  addSecretData(
    namespace: string,
    name: string,
    resourceVersion: string,
    data: Record<string, string>,
  ): Promise<V1Secret | undefined>;
}

export const APPLY_PATCH = 'application/apply-patch+yaml';
export const MERGE_PATCH = 'application/merge-patch+json';

export function deploymentPath(namespace: string, name?: string): string {
  return `/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

export function secretPath(namespace: string, name?: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets${name === undefined ? '' : `/${encodeURIComponent(name)}`}`;
}

export function secretWriter(client: KubeClient): SecretWriter {
  return {
    async readSecret(namespace, name) {
      try {
        return await client.request<V1Secret>('GET', secretPath(namespace, name));
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) return undefined;
        throw err;
      }
    },
    async applySecret(desired) {
      const { name, namespace } = desired.metadata as { name: string; namespace: string };
      return client.request<V1Secret>('PATCH', secretPath(namespace, name), {
        query: { fieldManager: FIELD_MANAGER, force: 'true' },
        body: desired,
        contentType: APPLY_PATCH,
      });
    },
    async createSecret(secret) {
      const { namespace } = secret.metadata as { namespace: string };
      try {
        return await client.request<V1Secret>('POST', secretPath(namespace), {
          query: { fieldManager: FIELD_MANAGER },
          body: secret,
        });
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 409) return undefined;
        throw err;
      }
    },
    async addSecretData(namespace, name, resourceVersion, data) {
      try {
        return await client.request<V1Secret>('PATCH', secretPath(namespace, name), {
          query: { fieldManager: FIELD_MANAGER },
          body: { metadata: { resourceVersion }, data },
          contentType: MERGE_PATCH,
        });
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 409) return undefined;
        throw err;
      }
    },
  };
}

export function kubeWriter(client: KubeClient): KubeWriter {
  return {
    async applyDeployment(desired, { force }) {
      const { name, namespace } = desired.metadata as { name: string; namespace: string };
      // JSON is YAML: the apply patch goes as JSON.
      return client.request<V1Deployment>('PATCH', deploymentPath(namespace, name), {
        query: { fieldManager: FIELD_MANAGER, force: force ? 'true' : undefined },
        body: desired,
        contentType: APPLY_PATCH,
      });
    },
    async patchStatus(namespace, name, status) {
      const out = await client.request<{ metadata?: { resourceVersion?: string } }>(
        'PATCH',
        `${functionServicePath(namespace, name)}/status`,
        {
          query: { fieldManager: FIELD_MANAGER },
          body: { status },
          contentType: MERGE_PATCH,
        },
      );
      return out?.metadata?.resourceVersion;
    },
    async readDeployment(namespace, name) {
      try {
        return await client.request<V1Deployment>('GET', deploymentPath(namespace, name));
      } catch (err) {
        if (err instanceof KubeApiError && err.code === 404) return undefined;
        throw err;
      }
    },
  };
}
