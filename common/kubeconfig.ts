/**
 * The one way every part finds its Kubernetes API server (`loadKubeAccess`), in this order:
 * 1. FNMESH_KUBECONFIG (`KUBECONFIG_VAR`, flag `--kubeconfig`), read by the part's config: that file, which must exist;
 * 2. KUBECONFIG (its files that exist), as kubectl;
 * 3. ~/.kube/config;
 * 4. the pod's service account (KUBERNETES_SERVICE_HOST/PORT and /var/run/secrets/kubernetes.io/serviceaccount),
 *    which is how the gateway and the operator run in a cluster.
 * Nothing found, or a named file missing or unparsable, is a ConfigError naming the fix.
 *
 * The kubeconfig is read here, without @kubernetes/client-node, for the common cases: a user with a token, a
 * token file, a client certificate or a user name and password. Anything else (several KUBECONFIG files, exec
 * credential plugins, auth providers, impersonation) is `unsupported` with the reason: only then is
 * client-node's KubeConfig loaded, which handles all of it.
 *
 * Files (token, certificates) are read again every `refreshMs` (default 60 s, as client-go does for a
 * service account token, which the kubelet rotates), and at once after a 401.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ConfigError, errorMessage } from './errors';
import {
  KUBECONFIG_VAR,
  accessFromKubeConfig,
  type Credentials,
  type KubeAccess,
  type TlsMaterial,
} from './kube-access';
import { silentLogger, type Logger } from './logger';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Where a value comes from: inline data or a file (re-read on refresh). */
export type Source = { data: string | Buffer } | { file: string };

/** Everything needed to reach the API server, as read from a kubeconfig or the service account. */
export interface AccessSpec {
  server: string;
  proxyUrl?: string;
  tlsServerName?: string;
  insecureSkipTlsVerify?: boolean;
  ca?: Source;
  cert?: Source;
  key?: Source;
  token?: Source;
  username?: string;
  password?: string;
}

export type SpecResult =
  | { kind: 'spec'; spec: AccessSpec; source: string }
  /** What only client-node reads; `files`: the kubeconfig files it should load (merged in this order). */
  | { kind: 'unsupported'; reason: string; files?: string[] }
  /** A named kubeconfig that does not exist or does not parse: the reason says what to fix. */
  | { kind: 'invalid'; reason: string }
  /** Nothing to read: no kubeconfig and not in a pod. */
  | { kind: 'none'; reason: string };

export interface LoadEnv {
  KUBECONFIG?: string;
  HOME?: string;
  KUBERNETES_SERVICE_HOST?: string;
  KUBERNETES_SERVICE_PORT?: string;
}

type Doc = Record<string, unknown>;

function isObject(v: unknown): v is Doc {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function named(list: unknown, name: string, field: string): Doc | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = list.find((e) => isObject(e) && e.name === name) as Doc | undefined;
  const value = entry?.[field];
  return isObject(value) ? value : undefined;
}

function str(d: Doc, k: string): string | undefined {
  const v = d[k];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A base64 `-data` field or a file (relative to the kubeconfig's directory). */
function source(d: Doc, fileKey: string, dataKey: string, dir: string): Source | undefined {
  const data = str(d, dataKey);
  if (data) return { data: Buffer.from(data, 'base64') };
  const file = str(d, fileKey);
  if (file) return { file: path.isAbsolute(file) ? file : path.join(dir, file) };
  return undefined;
}

/** The access a parsed kubeconfig describes for its current context. Pure. */
export function specFromKubeconfig(doc: unknown, dir: string, where: string): SpecResult {
  if (!isObject(doc)) return { kind: 'unsupported', reason: `${where} is not a kubeconfig` };
  const contextName = str(doc, 'current-context');
  if (!contextName) return { kind: 'unsupported', reason: `${where} has no current-context` };
  const context = named(doc.contexts, contextName, 'context');
  if (!context) return { kind: 'unsupported', reason: `${where} has no context ${contextName}` };
  const clusterName = str(context, 'cluster');
  const cluster = clusterName ? named(doc.clusters, clusterName, 'cluster') : undefined;
  const server = cluster ? str(cluster, 'server') : undefined;
  if (!cluster || !server)
    return { kind: 'unsupported', reason: `${where}: context ${contextName} has no cluster with a server` };
  const userName = str(context, 'user');
  const user = (userName ? named(doc.users, userName, 'user') : undefined) ?? {};
  for (const k of ['exec', 'auth-provider', 'as', 'as-groups', 'as-uid', 'as-user-extra']) {
    if (user[k] !== undefined) return { kind: 'unsupported', reason: `${where}: the user's ${k} needs client-node` };
  }
  const spec: AccessSpec = { server: server.replace(/\/+$/, '') };
  const proxyUrl = str(cluster, 'proxy-url');
  if (proxyUrl) spec.proxyUrl = proxyUrl;
  const tlsServerName = str(cluster, 'tls-server-name');
  if (tlsServerName) spec.tlsServerName = tlsServerName;
  if (cluster['insecure-skip-tls-verify'] === true) spec.insecureSkipTlsVerify = true;
  const ca = source(cluster, 'certificate-authority', 'certificate-authority-data', dir);
  if (ca) spec.ca = ca;
  const cert = source(user, 'client-certificate', 'client-certificate-data', dir);
  if (cert) spec.cert = cert;
  const key = source(user, 'client-key', 'client-key-data', dir);
  if (key) spec.key = key;
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile') ?? str(user, 'token-file');
  if (token) spec.token = { data: token };
  else if (tokenFile) spec.token = { file: path.isAbsolute(tokenFile) ? tokenFile : path.join(dir, tokenFile) };
  const username = str(user, 'username');
  const password = str(user, 'password');
  if (username) spec.username = username;
  if (password) spec.password = password;
  return { kind: 'spec', spec, source: where };
}

/** The pod's service account (client-node's loadFromCluster). Pure. */
export function inClusterSpec(host: string, port: string, dir = SERVICE_ACCOUNT_DIR): AccessSpec {
  const scheme = port === '80' || port === '8080' || port === '8001' ? 'http' : 'https';
  const h = isIPv6(host) ? `[${host}]` : host;
  return {
    server: `${scheme}://${h}:${port}`,
    ca: { file: path.join(dir, 'ca.crt') },
    token: { file: path.join(dir, 'token') },
  };
}

export interface FindOptions {
  /** The FNMESH_KUBECONFIG setting (KUBECONFIG_VAR) as the part's config read it: this file, and it must exist. */
  kubeconfig?: string;
  serviceAccountDir?: string;
}

/** The kubeconfig file(s) to read, in the order of the precedence in the header; undefined: none. */
function kubeconfigFiles(env: LoadEnv, kubeconfig: string | undefined): { files: string[] } | SpecResult | undefined {
  if (kubeconfig) {
    if (!existsSync(kubeconfig))
      return {
        kind: 'invalid',
        reason: `${KUBECONFIG_VAR}="${kubeconfig}" does not exist: give the path of a kubeconfig file, or unset it to use KUBECONFIG or the in-cluster ServiceAccount`,
      };
    return { files: [kubeconfig] };
  }
  if (env.KUBECONFIG) {
    // As kubectl: the files of KUBECONFIG that do not exist are skipped.
    const files = env.KUBECONFIG.split(path.delimiter).filter((f) => f && existsSync(f));
    if (files.length === 0)
      return {
        kind: 'invalid',
        reason: `KUBECONFIG="${env.KUBECONFIG}" names no file that exists: fix it, or unset it to use ~/.kube/config or the in-cluster ServiceAccount`,
      };
    return { files };
  }
  const home = env.HOME ?? os.homedir();
  const config = home ? path.join(home, '.kube', 'config') : undefined;
  return config && existsSync(config) ? { files: [config] } : undefined;
}

/**
 * Finds the access spec: FNMESH_KUBECONFIG (`options.kubeconfig`), else KUBECONFIG, else ~/.kube/config, else
 * the pod's ServiceAccount. `unsupported` carries the files for client-node; `invalid` and `none` say what
 * to fix.
 */
export function findAccessSpec(env: LoadEnv, options: FindOptions = {}): SpecResult {
  const found = kubeconfigFiles(env, options.kubeconfig);
  if (found && 'kind' in found) return found;
  if (found) {
    const { files } = found;
    if (files.length > 1)
      return { kind: 'unsupported', reason: 'KUBECONFIG names several files (merging them needs client-node)', files };
    const file = files[0]!;
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(file, 'utf8'));
    } catch (err) {
      return {
        kind: 'invalid',
        reason: `cannot read the kubeconfig ${file}: ${err instanceof Error ? err.message : String(err)}`,
      };
    }
    const result = specFromKubeconfig(doc, path.dirname(file), file);
    return result.kind === 'unsupported' ? { ...result, files } : result;
  }
  const serviceAccountDir = options.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && existsSync(path.join(serviceAccountDir, 'token'))) {
    return {
      kind: 'spec',
      spec: inClusterSpec(env.KUBERNETES_SERVICE_HOST, env.KUBERNETES_SERVICE_PORT, serviceAccountDir),
      source: 'the pod service account',
    };
  }
  return {
    kind: 'none',
    reason: `no Kubernetes configuration was found: set ${KUBECONFIG_VAR} or KUBECONFIG to a kubeconfig file (flag --kubeconfig), or run it in a pod with a ServiceAccount`,
  };
}

function read(s: Source | undefined, readFile: (file: string) => Buffer): Buffer | string | undefined {
  if (!s) return undefined;
  return 'data' in s ? s.data : readFile(s.file);
}

/** The credentials of a spec, reading its files now. */
export function credentialsOf(
  spec: AccessSpec,
  readFile: (file: string) => Buffer = (f) => readFileSync(f),
): Credentials {
  const tls: TlsMaterial = {};
  const ca = read(spec.ca, readFile);
  const cert = read(spec.cert, readFile);
  const key = read(spec.key, readFile);
  if (ca) tls.ca = ca;
  if (cert) tls.cert = cert;
  if (key) tls.key = key;
  if (spec.insecureSkipTlsVerify) tls.rejectUnauthorized = false;
  if (spec.tlsServerName) tls.servername = spec.tlsServerName;
  const headers: Record<string, string> = {};
  const token = read(spec.token, readFile);
  if (token !== undefined) headers.authorization = `Bearer ${token.toString().trim()}`;
  else if (spec.username !== undefined)
    headers.authorization = `Basic ${Buffer.from(`${spec.username}:${spec.password ?? ''}`).toString('base64')}`;
  return { tls, headers };
}

/** A KubeAccess for a spec; files are read again after `refreshMs` or on `credentials(true)`. */
export function accessFromSpec(
  spec: AccessSpec,
  options: { refreshMs?: number; readFile?: (file: string) => Buffer; now?: () => number } = {},
): KubeAccess {
  const now = options.now ?? Date.now;
  let cached: { at: number; value: Credentials } | undefined;
  return {
    server: spec.server,
    ...(spec.proxyUrl ? { proxyUrl: spec.proxyUrl } : {}),
    async credentials(refresh = false) {
      if (!refresh && cached && now() - cached.at < (options.refreshMs ?? 60_000)) return cached.value;
      cached = { at: now(), value: credentialsOf(spec, options.readFile) };
      return cached.value;
    },
  };
}

/** A client-node KubeConfig of `files` (merged in order, as its loadFromDefault does); loads client-node now. */
function clientNodeAccess(files: string[]): KubeAccess {
  const { KubeConfig } =
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('@kubernetes/client-node') as typeof import('@kubernetes/client-node');
  const kc = new KubeConfig();
  try {
    kc.loadFromFile(files[0]!);
    for (const file of files.slice(1)) {
      const next = new KubeConfig();
      next.loadFromFile(file);
      kc.mergeConfig(next);
    }
  } catch (err) {
    throw new ConfigError(`cannot load the kubeconfig ${files.join(path.delimiter)}: ${errorMessage(err)}`);
  }
  if (!kc.getCurrentCluster())
    throw new ConfigError(
      `the kubeconfig ${files.join(path.delimiter)} has no current cluster: set its current-context (kubectl config use-context)`,
    );
  return accessFromKubeConfig(kc);
}

export interface LoadKubeAccessOptions extends FindOptions {
  env?: LoadEnv;
  logger?: Logger;
}

/** The part's API server access, found as the header says. Throws ConfigError with the fix. */
export function loadKubeAccess(options: LoadKubeAccessOptions = {}): KubeAccess {
  const log = options.logger ?? silentLogger;
  const found = findAccessSpec(options.env ?? process.env, options);
  switch (found.kind) {
    case 'spec':
      log.debug('API server access', { server: found.spec.server, from: found.source });
      return accessFromSpec(found.spec);
    case 'unsupported':
      if (!found.files) throw new ConfigError(`cannot use the Kubernetes configuration: ${found.reason}`);
      log.debug('API server access through client-node', { why: found.reason, files: found.files });
      return clientNodeAccess(found.files);
    default:
      throw new ConfigError(found.reason);
  }
}
