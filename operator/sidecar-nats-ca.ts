/**
 * The NATS servers' CA for the injected sidecars (FNMESH_SIDECAR_NATS_TLS_CA_FILE), the pure part: the PEM
 * bundle checked (each block a real X.509 certificate, node:crypto parses it), the Secret the operator copies it
 * into in each FunctionService's namespace (its own Secret per FunctionService, owned by it like the credentials
 * Secret, so the garbage collector removes it with the FunctionService), and the pod side: the Secret volume, the
 * sidecar's read-only mount and its FNMESH_NATS_TLS_CA (sidecar-env.ts). The pod template carries the bundle's
 * SHA-256 as an annotation, so a changed CA rolls the pods (the sidecar reads the CA when it connects).
 * nats-ca-secret.ts is the Secret; the shell (reading the file, applying the Secret) is reconciler.ts.
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { V1Container, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../common/errors';

/** The key of the CA in the Secret, and so the file name in the sidecar. */
export const CA_SECRET_KEY = 'ca.crt';
/** Where the sidecar finds the CA Secret mounted (the chart mounts the gateway's CA at the same place). */
export const CA_MOUNT_DIR = '/var/run/fnmesh/nats-tls';
export const CA_MOUNT_FILE = `${CA_MOUNT_DIR}/${CA_SECRET_KEY}`;
export const CA_VOLUME_NAME = 'fnmesh-nats-tls';
/** The pod template annotation holding the bundle's SHA-256: a new CA rolls the pods. */
export const CA_HASH_ANNOTATION = 'fnmesh.io/nats-tls-ca-sha256';

/** A checked CA bundle: its PEM text (certificates only, normalised) and that text's SHA-256 (hex). */
export interface NatsCaBundle {
  pem: string;
  sha256: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/g;

/**
 * The certificates of a PEM file's text; `source` names the file and the setting in every error. Anything
 * but CERTIFICATE blocks (a private key pasted by mistake) is refused, and so is a file without one.
 */
export function parseNatsCaBundle(text: string, source: string): NatsCaBundle {
  const fix =
    'give it the PEM file of the CA that signed your NATS servers\u2019 certificates (-----BEGIN CERTIFICATE----- blocks)';
  const certs: string[] = [];
  for (const m of text.matchAll(PEM_BLOCK)) {
    if (m[1] !== 'CERTIFICATE') throw new ConfigError(`${source} holds a ${m[1]} block, not only certificates: ${fix}`);
    const block = m[0].replace(/\r\n/g, '\n');
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(
        `${source}: certificate ${certs.length + 1} is not a valid X.509 certificate (${errorMessage(err)}): ${fix}`,
      );
    }
    certs.push(block);
  }
  if (certs.length === 0) throw new ConfigError(`${source} holds no PEM certificate: ${fix}`);
  const pem = `${certs.join('\n')}\n`;
  return { pem, sha256: createHash('sha256').update(pem).digest('hex') };
}

/** The pod volume of the CA Secret (world-readable files: the sidecar runs as its own UID). */
export function natsCaVolume(secretName: string): V1Volume {
  return { name: CA_VOLUME_NAME, secret: { secretName, defaultMode: 0o444 } };
}

export function natsCaVolumeMount(): V1VolumeMount {
  return { name: CA_VOLUME_NAME, mountPath: CA_MOUNT_DIR, readOnly: true };
}

/** The container with the CA mount added (replacing one of the same name). Pure. */
export function withNatsCaMount(container: V1Container): V1Container {
  const mounts = (container.volumeMounts ?? []).filter((m) => m.name !== CA_VOLUME_NAME);
  return { ...container, volumeMounts: [...mounts, natsCaVolumeMount()] };
}
