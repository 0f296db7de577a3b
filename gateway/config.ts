/**
 * The gateway's configuration, read from FNMESH_* env with the common readers. Every value is validated
 * here, so a bad setting stops the process at start with a message naming the variable.
 */
import {
  ConfigError,
  isNamespaceName,
  readBool,
  readEnum,
  readInt,
  readJson,
  readListen,
  readLogLevel,
  readNatsServers,
  readString,
  ruleSchema,
  type Env,
  type LogLevel,
  type Rule,
} from '../common';
import { KUBECONFIG_VAR } from '../common/kube-access';
import type { JwtConfig } from './auth';
import { parseOriginPattern } from './cors';

export interface ListenAddress {
  host: string;
  port: number;
}

export const RULE_SOURCES = ['files', 'kubernetes'] as const;
export type RuleSourceKind = (typeof RULE_SOURCES)[number];

export interface GatewayConfig {
  listen: ListenAddress;
  /** Ops endpoints (/healthz, /readyz, /metrics) on their own port; on `listen` when absent. */
  opsListen?: ListenAddress;
  /** External NATS servers; when absent the gateway runs the embedded broker. */
  natsServers?: string[];
  natsToken?: string;
  broker: ListenAddress;
  /** Where the services' rules come from: manifest files, or FunctionService objects in Kubernetes. */
  ruleSource: RuleSourceKind;
  /** Files and directories of FunctionService manifests (the file rule source). */
  manifests: string[];
  /** The kubeconfig of the Kubernetes rule source; absent: KUBECONFIG, ~/.kube/config or in-cluster. */
  kubeconfig?: string;
  /** The one namespace the Kubernetes rule source watches; absent: all namespaces. */
  watchNamespace?: string;
  jwt: JwtConfig;
  /** The gateway-wide default rule; undefined means deny. */
  defaultRule?: Rule;
  maxBodyBytes: number;
  /** Absolute cap on any call's deadline, milliseconds. */
  maxTimeoutMs: number;
  /** Allowed CORS origins, exact or `scheme://host:*` (any port); '*' allows any; empty disables CORS. */
  corsOrigins: string[] | '*';
  /** Listed origins are answered with Access-Control-Allow-Credentials: true; always false with '*'. */
  corsCredentials: boolean;
  exposeRuleReasons: boolean;
  shutdownTimeoutMs: number;
  logLevel: LogLevel;
}

function readList(env: Env, name: string): string[] {
  const v = readString(env, name);
  if (v === undefined) return [];
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function readDefaultRule(env: Env, name = 'FNMESH_DEFAULT_RULE'): Rule | undefined {
  const value = readJson(env, name);
  if (value === undefined) return undefined;
  const parsed = ruleSchema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((i) => `${i.path.length ? i.path.join('.') : '(rule)'}: ${i.message}`)
      .join('; ');
    throw new ConfigError(
      `${name} is not a valid rule: ${detail}; for example {"rule":"allow"} or {"rule":"authenticated"}`,
    );
  }
  return parsed.data;
}

function readCorsOrigins(env: Env): string[] | '*' {
  const list = readList(env, 'FNMESH_CORS_ORIGINS');
  if (list.includes('*')) {
    if (list.length > 1)
      throw new ConfigError(
        `FNMESH_CORS_ORIGINS="${env.FNMESH_CORS_ORIGINS}" is not valid: use "*" alone or a comma list of origins`,
      );
    return '*';
  }
  for (const origin of list) {
    if (!parseOriginPattern(origin)) {
      throw new ConfigError(
        `FNMESH_CORS_ORIGINS: "${origin}" is not a valid origin: it accepts "*" or comma-separated origins such as https://app.example.com (scheme, host and optional port, no path or trailing slash), or http://localhost:* for any port of one scheme and host`,
      );
    }
  }
  return list;
}

/** On by default for a list of origins; off with "*", where a browser refuses credentials. */
function readCorsCredentials(env: Env, origins: string[] | '*'): boolean {
  if (origins !== '*') return readBool(env, 'FNMESH_CORS_CREDENTIALS', true);
  if (readBool(env, 'FNMESH_CORS_CREDENTIALS', false)) {
    throw new ConfigError(
      'FNMESH_CORS_CREDENTIALS=true cannot be used with FNMESH_CORS_ORIGINS="*": browsers refuse credentials (cookies, credentials: "include") from a wildcard origin; list the origins in FNMESH_CORS_ORIGINS (http://localhost:* allows any port of a host), or unset FNMESH_CORS_CREDENTIALS',
    );
  }
  return false;
}

/** FNMESH_RULE_SOURCE and the settings of the chosen source, checked against each other. */
function readRuleSource(env: Env): Pick<GatewayConfig, 'ruleSource' | 'manifests' | 'kubeconfig' | 'watchNamespace'> {
  const ruleSource = readEnum(env, 'FNMESH_RULE_SOURCE', RULE_SOURCES, 'files');
  const manifests = readList(env, 'FNMESH_MANIFESTS');
  const kubeconfig = readString(env, KUBECONFIG_VAR);
  const watchNamespace = readString(env, 'FNMESH_WATCH_NAMESPACE');
  if (ruleSource === 'kubernetes') {
    if (manifests.length > 0) {
      throw new ConfigError(
        'FNMESH_RULE_SOURCE=kubernetes and FNMESH_MANIFESTS are both set: choose one source of rules: unset FNMESH_MANIFESTS to take them from the FunctionService objects in the cluster, or unset FNMESH_RULE_SOURCE to read the manifest files',
      );
    }
    if (watchNamespace !== undefined && !isNamespaceName(watchNamespace)) {
      throw new ConfigError(
        `FNMESH_WATCH_NAMESPACE="${watchNamespace}" is not a valid namespace name: lowercase letters, digits and "-", at most 63 characters; unset it to watch all namespaces`,
      );
    }
    return {
      ruleSource,
      manifests,
      ...(kubeconfig ? { kubeconfig } : {}),
      ...(watchNamespace ? { watchNamespace } : {}),
    };
  }
  // FNMESH_KUBECONFIG / FNMESH_WATCH_NAMESPACE mean nothing to the file source (the operator shares the
  // namespace variable): main.ts warns that they are ignored.
  return { ruleSource, manifests };
}

export function loadGatewayConfig(env: Env = process.env): GatewayConfig {
  const listen = readListen(env, 'FNMESH_LISTEN', '0.0.0.0:8080');
  const opsRaw = readString(env, 'FNMESH_OPS_LISTEN');
  const opsListen = opsRaw === undefined ? undefined : readListen(env, 'FNMESH_OPS_LISTEN', opsRaw);
  const natsServers = readNatsServers(env, 'FNMESH_NATS_URL');
  const natsToken = readString(env, 'FNMESH_NATS_TOKEN');
  const broker = {
    host: readString(env, 'FNMESH_BROKER_HOST', '127.0.0.1'),
    port: readInt(env, 'FNMESH_BROKER_PORT', 4222, { min: 0, max: 65535 }),
  };
  const jwt: JwtConfig = {};
  const secrets = readList(env, 'FNMESH_JWT_SECRET');
  if (secrets.length > 0) jwt.secrets = secrets;
  const jwksFile = readString(env, 'FNMESH_JWKS_FILE');
  if (jwksFile) jwt.jwksFile = jwksFile;
  const jwksUrl = readString(env, 'FNMESH_JWKS_URL');
  if (jwksUrl) {
    try {
      const u = new URL(jwksUrl);
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error('not http(s)');
    } catch {
      throw new ConfigError(`FNMESH_JWKS_URL="${jwksUrl}" is not valid: it accepts an http(s) URL of a JWKS document`);
    }
    jwt.jwksUrl = jwksUrl;
  }
  const issuer = readString(env, 'FNMESH_JWT_ISSUER');
  if (issuer) jwt.issuer = issuer;
  const audience = readString(env, 'FNMESH_JWT_AUDIENCE');
  if (audience) jwt.audience = audience;

  const corsOrigins = readCorsOrigins(env);
  const config: GatewayConfig = {
    listen,
    broker,
    ...readRuleSource(env),
    jwt,
    defaultRule: readDefaultRule(env),
    maxBodyBytes: readInt(env, 'FNMESH_MAX_BODY_BYTES', 1024 * 1024, { min: 16, max: 64 * 1024 * 1024 }),
    maxTimeoutMs: readInt(env, 'FNMESH_MAX_TIMEOUT_MS', 60_000, { min: 1, max: 3_600_000 }),
    corsOrigins,
    corsCredentials: readCorsCredentials(env, corsOrigins),
    exposeRuleReasons: readBool(env, 'FNMESH_EXPOSE_RULE_REASONS', false),
    shutdownTimeoutMs: readInt(env, 'FNMESH_SHUTDOWN_TIMEOUT_MS', 10_000, { min: 0, max: 600_000 }),
    logLevel: readLogLevel(env),
  };
  if (opsListen) config.opsListen = opsListen;
  if (natsServers) config.natsServers = natsServers;
  if (natsToken) config.natsToken = natsToken;
  return config;
}
