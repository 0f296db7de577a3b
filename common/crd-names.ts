/**
 * The names of the FunctionService custom resource: its API group, version, kind, plural and short name,
 * written once for the CRD generator (crds/generate.ts), the manifest schema, the operator, the gateway's
 * Kubernetes rule source, the local cluster and the benchmarks. Loads nothing, so the lightest part may
 * import it. deploy/rbac/*.yaml and examples/*.yaml spell the same names; crds/generate.test.ts checks them.
 */

export const CRD_GROUP = 'fnmesh.io';
export const CRD_VERSION = 'v1alpha1';
/** `fnmesh.io/v1alpha1`, the apiVersion of every FunctionService object. */
export const API_VERSION = `${CRD_GROUP}/${CRD_VERSION}` as const;
export const KIND = 'FunctionService';
export const LIST_KIND = `${KIND}List` as const;
export const CRD_PLURAL = 'functionservices';
export const CRD_SINGULAR = 'functionservice';
/** `kubectl get fsvc`. */
export const CRD_SHORT_NAMES: readonly string[] = ['fsvc'];
/** `kubectl get fnmesh` lists every fnmesh resource. */
export const CRD_CATEGORIES: readonly string[] = ['fnmesh'];
/** The CustomResourceDefinition's own name: `functionservices.fnmesh.io`. */
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}` as const;

/**
 * The API path of the FunctionServices of one namespace (or of all namespaces when `namespace` is absent),
 * or of one of them when `name` is given: `/apis/fnmesh.io/v1alpha1/namespaces/shop/functionservices/cart`.
 */
export function functionServicePath(namespace?: string, name?: string): string {
  const scope = namespace === undefined ? '' : `/namespaces/${encodeURIComponent(namespace)}`;
  const object = name === undefined ? '' : `/${encodeURIComponent(name)}`;
  return `/apis/${API_VERSION}${scope}/${CRD_PLURAL}${object}`;
}

/** The API path of the CustomResourceDefinition itself (to read whether it is Established). */
export const CRD_PATH = `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${CRD_NAME}`;
