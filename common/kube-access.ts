/**
 * How to reach and authenticate to a Kubernetes API server: its URL, TLS material and auth headers. The
 * plain-JSON client (kube-client.ts) takes one of these. Two sources:
 * - `loadKubeAccess` (kubeconfig.ts): the one resolver every part uses (FNMESH_KUBECONFIG, then KUBECONFIG,
 *   then ~/.kube/config, then the pod's ServiceAccount), reading the kubeconfig itself without loading
 *   @kubernetes/client-node (whose generated API alone is ~60 MB of memory);
 * - `accessFromKubeConfig`: a client-node KubeConfig, the resolver's fallback for what it does not read
 *   itself (exec plugins, auth providers, impersonation, several KUBECONFIG files).
 *
 * This module loads nothing at run time (types only), so the CLI can import the setting's name.
 */
import type https from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

/**
 * The kubeconfig setting of every part that talks to the API server (gateway, operator): a kubeconfig file.
 * Unset: KUBECONFIG, ~/.kube/config, else the pod's ServiceAccount (kubeconfig.ts, `findAccessSpec`).
 */
export const KUBECONFIG_VAR = 'FNMESH_KUBECONFIG';

export interface TlsMaterial {
  ca?: Buffer | string;
  cert?: Buffer | string;
  key?: Buffer | string;
  pfx?: Buffer | string;
  passphrase?: string;
  rejectUnauthorized?: boolean;
  servername?: string;
}

export interface Credentials {
  tls: TlsMaterial;
  /** Lower-case header names (authorization, impersonate-user). */
  headers: Record<string, string>;
}

export interface KubeAccess {
  /** `https://host:port`, possibly with a path prefix (a proxy in front of the API server). */
  server: string;
  /** An http(s) proxy to tunnel through (the kubeconfig's proxy-url). */
  proxyUrl?: string;
  /** What to send with the next request; implementations cache it, `refresh` re-reads (after a 401). */
  credentials(refresh?: boolean): Promise<Credentials>;
}

/** The TLS fields of https.RequestOptions as client-node fills them. Pure. */
export function tlsOf(opts: https.RequestOptions): TlsMaterial {
  const tls: TlsMaterial = {};
  if (opts.ca) tls.ca = opts.ca as Buffer | string;
  if (opts.cert) tls.cert = opts.cert as Buffer | string;
  if (opts.key) tls.key = opts.key as Buffer | string;
  if (opts.pfx) tls.pfx = opts.pfx as Buffer | string;
  if (opts.passphrase) tls.passphrase = opts.passphrase;
  if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
  if (opts.servername) tls.servername = opts.servername;
  return tls;
}

/** Access through a client-node KubeConfig; what it yields is cached for `ttlMs` (default 10 s). */
export function accessFromKubeConfig(kc: KubeConfig, ttlMs = 10_000): KubeAccess {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('no current cluster in the kubeconfig');
  let cached: { at: number; value: Credentials } | undefined;
  let reading: Promise<Credentials> | undefined;
  const read = async (): Promise<Credentials> => {
    const opts: https.RequestOptions = {};
    // Fills ca/cert/key, rejectUnauthorized, servername, the auth headers (token, exec, file, OIDC) and
    // `auth` for basic auth; it also builds an https.Agent, which is not used.
    await kc.applyToHTTPSOptions(opts);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (typeof v === 'string' || typeof v === 'number') headers[k.toLowerCase()] = String(v);
      else if (Array.isArray(v)) headers[k.toLowerCase()] = v.join(', ');
    }
    if (opts.auth) headers.authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
    const value = { tls: tlsOf(opts), headers };
    cached = { at: Date.now(), value };
    return value;
  };
  return {
    server: cluster.server,
    ...(cluster.proxyUrl ? { proxyUrl: cluster.proxyUrl } : {}),
    async credentials(refresh = false) {
      if (!refresh && cached && Date.now() - cached.at < ttlMs) return cached.value;
      reading ??= read().finally(() => {
        reading = undefined;
      });
      return reading;
    },
  };
}
