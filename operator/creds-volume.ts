/**
 * The pod side of a replica's NATS credentials: the Secret volume and its read-only mount into the sidecar
 * at CREDS_MOUNT_DIR (the sidecar's FNMESH_NATS_CREDS is CREDS_MOUNT_FILE). Pure.
 */
import type { V1Container, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { CREDS_MOUNT_DIR } from '../common/nats-identity/secret-layout';

/** The pod volume holding the replica's `.creds` (its Secret), mounted read-only into the sidecar. */
export const CREDS_VOLUME_NAME = 'fnmesh-nats-creds';

/** The Secret volume of the pod (the whole Secret: its one key is the `.creds` file). */
export function credsVolume(secretName: string): V1Volume {
  // Read-only for everyone in the sidecar container (it runs as SIDECAR_UID, the files belong to root);
  // only the sidecar mounts the volume, so the function container never sees the file.
  return { name: CREDS_VOLUME_NAME, secret: { secretName, defaultMode: 0o444 } };
}

/** The sidecar's mount of it: the directory, so the kubelet's updates reach the file (no subPath). */
export function credsVolumeMount(): V1VolumeMount {
  return { name: CREDS_VOLUME_NAME, mountPath: CREDS_MOUNT_DIR, readOnly: true };
}

/** The container with the creds mount added (replacing one of the same name). Pure. */
export function withCredsMount(container: V1Container): V1Container {
  const mounts = (container.volumeMounts ?? []).filter((m) => m.name !== CREDS_VOLUME_NAME);
  return { ...container, volumeMounts: [...mounts, credsVolumeMount()] };
}
