/**
 * Puts the fnmesh sidecar into a pod spec as a Kubernetes native sidecar (an init container with
 * `restartPolicy: Always`). Idempotent by container name, the way Dapr's injector patches: whatever the
 * pod spec holds, the result has exactly one `fnmesh-sidecar`, first among the init containers, and none
 * among the main containers. Pure: the input is not modified.
 */
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

export const SIDECAR_CONTAINER_NAME = 'fnmesh-sidecar';

export function injectSidecar<P extends Pick<V1PodSpec, 'containers' | 'initContainers'>>(
  podSpec: P,
  sidecar: V1Container,
): P {
  const name = sidecar.name;
  const containers = podSpec.containers.filter((c) => c.name !== name);
  const init = podSpec.initContainers ?? [];
  const at = init.findIndex((c) => c.name === name);
  // Replace in place when present (init containers start in order: moving it would change the pod's
  // start order); otherwise first, so the sidecar is up before any other init container needs the mesh.
  const initContainers =
    at >= 0
      ? init.filter((c, i) => c.name !== name || i === at).map((c) => (c.name === name ? sidecar : c))
      : [sidecar, ...init];
  return { ...podSpec, containers, initContainers };
}

/** True when the pod spec holds the sidecar as a native sidecar (for drift checks and tests). */
export function hasNativeSidecar(
  podSpec: Pick<V1PodSpec, 'containers' | 'initContainers'>,
  name = SIDECAR_CONTAINER_NAME,
): boolean {
  const inInit = (podSpec.initContainers ?? []).filter((c) => c.name === name);
  return (
    inInit.length === 1 && inInit[0]!.restartPolicy === 'Always' && !podSpec.containers.some((c) => c.name === name)
  );
}
