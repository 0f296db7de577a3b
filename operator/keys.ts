/**
 * Work queue keys: `namespace/name` of a FunctionService. Informer handlers only turn objects into keys
 * (a FunctionService into its own key, a Deployment into its controlling FunctionService's key); the
 * reconciler splits the key and reads the current state itself. Pure.
 */
import { API_VERSION, KIND } from '../common/crd-names';

interface ObjectMetaLike {
  metadata?: {
    name?: string;
    namespace?: string;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; controller?: boolean }>;
  };
}

/** The key of a namespaced object; undefined when it has no name or namespace. */
export function objectKey(obj: ObjectMetaLike): string | undefined {
  const { name, namespace } = obj.metadata ?? {};
  return name && namespace ? `${namespace}/${name}` : undefined;
}

/** The key of the FunctionService that controls this object (its controller owner reference), if any. */
export function ownerKey(obj: ObjectMetaLike): string | undefined {
  const namespace = obj.metadata?.namespace;
  const owner = obj.metadata?.ownerReferences?.find(
    (r) => r.controller === true && r.kind === KIND && r.apiVersion.split('/')[0] === API_VERSION.split('/')[0],
  );
  return owner && namespace ? `${namespace}/${owner.name}` : undefined;
}

export function splitKey(key: string): { namespace: string; name: string } {
  const i = key.indexOf('/');
  if (i <= 0 || i === key.length - 1 || key.indexOf('/', i + 1) !== -1)
    throw new Error(`"${key}" is not a namespace/name key`);
  return { namespace: key.slice(0, i), name: key.slice(i + 1) };
}
