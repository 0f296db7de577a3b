/**
 * The gateway's configuration, read from FNMESH_* env through its settings table (settings.ts): every value
 * is validated there, and the settings that depend on each other here, so a bad setting stops the process
 * at start with a message naming the variable.
 */
import {
  ConfigError,
  readSettings,
  ruleSchema,
  type Env,
  type ListenAddress,
  type LogLevel,
  type Rule,
} from '../common';
import { natsClientCredentials, type NatsClientCredentials } from '../common/nats-client-settings';
import type { BrokerSecuritySettings } from '../broker';
import type { JwtConfig } from './auth';
import { GATEWAY_SETTINGS, type RuleSourceKind } from './settings';

export { GATEWAY_SETTINGS, RULE_SOURCES, type RuleSourceKind } from './settings';
export type { ListenAddress } from '../common';

export interface GatewayConfig {
  listen: ListenAddress;
  /** The ops listener: /metrics, GET /v1/services with rule definitions, /healthz, /readyz. */
  opsListen: ListenAddress;
  /** When set, the call port serves /v1/services and /metrics to `Authorization: Bearer <adminToken>`. */
  adminToken?: string;
  /** External NATS servers; when absent the gateway runs the embedded broker. */
  natsServers?: string[];
  natsToken?: string;
  /** The `.creds` file and TLS files (FNMESH_NATS_CREDS, FNMESH_NATS_TLS_*). */
  natsClient?: NatsClientCredentials;
  broker: ListenAddress;
  /** The embedded broker's JWT trust and TLS files (FNMESH_BROKER_OPERATOR/_ACCOUNTS/_TLS_*), read at start. */
  brokerSecurity?: BrokerSecuritySettings;
  /** Where the services' rules come from: manifest files, or FunctionService objects in Kubernetes. */
  ruleSource: RuleSourceKind;
  /** Files and directories of FunctionService manifests (the file rule source). */
  manifests: string[];
  /** The kubeconfig of the Kubernetes rule source; absent: KUBECONFIG, ~/.kube/config or in-cluster. */
  kubeconfig?: string;
  /** The one namespace the Kubernetes rule source watches; absent: all namespaces. */
  watchNamespace?: string;
  jwt: JwtConfig;
  /** The file of the delegation tokens' signing key; absent: a random key per process. */
  delegationKeyFile?: string;
  /** The gateway-wide default rule; undefined means deny. */
  defaultRule?: Rule;
  /** FNMESH_MAX_BODY_BYTES when set; else the default, lowered to fit an external NATS server (limits.ts). */
  maxBodyBytes?: number;
  /** How deep arrays/objects may nest in params. */
  maxParamsDepth: number;
  /** The largest bearer token accepted; bounds the headers of a call on NATS. */
  maxTokenBytes: number;
  /** What a client may hold of the HTTP server: Node's http.Server options, from their settings. */
  front: FrontDoorLimits;
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

export interface FrontDoorLimits {
  /** Node's `maxHeaderSize`: the request line and headers together (431 above it). */
  maxHeaderBytes: number;
  /** Node's `headersTimeout`: the whole head, from the connection or the request's first byte (408). */
  headersTimeoutMs: number;
  /** Node's `requestTimeout`: the whole request, head and body (408). */
  receiveTimeoutMs: number;
  keepAliveTimeoutMs: number;
  /** Node's `maxConnections` on the call listener: more are closed at once. */
  maxConnections: number;
}

export function readDefaultRule(env: Env): Rule | undefined {
  const name = GATEWAY_SETTINGS.defaultRule.env;
  const value = GATEWAY_SETTINGS.defaultRule.read(env);
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

/** On by default for a list of origins; off with "*", where a browser refuses credentials. */
function corsCredentials(origins: string[] | '*', credentials: boolean | undefined): boolean {
  if (origins !== '*') return credentials ?? true;
  if (credentials) {
    throw new ConfigError(
      'FNMESH_CORS_CREDENTIALS=true cannot be used with FNMESH_CORS_ORIGINS="*": browsers refuse credentials (cookies, credentials: "include") from a wildcard origin; list the origins in FNMESH_CORS_ORIGINS (http://localhost:* allows any port of a host), or unset FNMESH_CORS_CREDENTIALS',
    );
  }
  return false;
}

export function loadGatewayConfig(env: Env = process.env): GatewayConfig {
  const s = readSettings(env, GATEWAY_SETTINGS);
  const manifests = s.manifests ?? [];
  const corsOrigins = s.corsOrigins ?? [];
  if (s.ruleSource === 'kubernetes' && manifests.length > 0) {
    throw new ConfigError(
      'FNMESH_RULE_SOURCE=kubernetes and FNMESH_MANIFESTS are both set: choose one source of rules: unset FNMESH_MANIFESTS to take them from the FunctionService objects in the cluster, or unset FNMESH_RULE_SOURCE to read the manifest files',
    );
  }
  const jwt: JwtConfig = { requireExp: s.jwtRequireExp, clockToleranceSec: s.jwtClockToleranceSec };
  if (s.jwtSecret && s.jwtSecret.length > 0) jwt.secrets = s.jwtSecret;
  if (s.jwksFile) jwt.jwksFile = s.jwksFile;
  if (s.jwksUrl) jwt.jwksUrl = s.jwksUrl;
  if (s.jwtIssuer) jwt.issuer = s.jwtIssuer;
  if (s.jwtAudience) jwt.audience = s.jwtAudience;

  if (s.headersTimeoutMs > s.receiveTimeoutMs) {
    throw new ConfigError(
      `FNMESH_HEADERS_TIMEOUT_MS=${s.headersTimeoutMs} is longer than FNMESH_RECEIVE_TIMEOUT_MS=${s.receiveTimeoutMs}: the head is part of the request, so its timeout must be at most the whole request's; lower FNMESH_HEADERS_TIMEOUT_MS or raise FNMESH_RECEIVE_TIMEOUT_MS`,
    );
  }
  const config: GatewayConfig = {
    listen: s.listen,
    opsListen: s.opsListen,
    broker: { host: s.brokerHost, port: s.brokerPort },
    ruleSource: s.ruleSource,
    manifests,
    jwt,
    defaultRule: readDefaultRule(env),
    maxParamsDepth: s.maxParamsDepth,
    maxTokenBytes: s.maxTokenBytes,
    front: {
      maxHeaderBytes: s.maxHeaderBytes,
      headersTimeoutMs: s.headersTimeoutMs,
      receiveTimeoutMs: s.receiveTimeoutMs,
      keepAliveTimeoutMs: s.keepAliveTimeoutMs,
      maxConnections: s.maxConnections,
    },
    maxTimeoutMs: s.maxTimeoutMs,
    corsOrigins,
    corsCredentials: corsCredentials(corsOrigins, s.corsCredentials),
    exposeRuleReasons: s.exposeRuleReasons,
    shutdownTimeoutMs: s.shutdownTimeoutMs,
    logLevel: s.logLevel,
  };
  // FNMESH_KUBECONFIG / FNMESH_WATCH_NAMESPACE mean nothing to the file source (the operator shares the
  // namespace variable): main.ts warns that they are ignored.
  if (s.ruleSource === 'kubernetes') {
    if (s.kubeconfig) config.kubeconfig = s.kubeconfig;
    if (s.watchNamespace) config.watchNamespace = s.watchNamespace;
  }
  if (s.delegationKeyFile) config.delegationKeyFile = s.delegationKeyFile;
  if (s.adminToken) config.adminToken = s.adminToken;
  if (s.maxBodyBytes !== undefined) config.maxBodyBytes = s.maxBodyBytes;
  if (s.natsUrl) config.natsServers = s.natsUrl;
  const brokerSecurity = brokerSecuritySettings(s);
  if (brokerSecurity) {
    if (s.natsUrl)
      throw new ConfigError(
        `${Object.keys(brokerSecurity)
          .map((k) => BROKER_SECURITY_ENV[k as keyof BrokerSecuritySettings])
          .join(
            ', ',
          )} configure the embedded broker, which does not run when FNMESH_NATS_URL is set: unset them, or unset FNMESH_NATS_URL to run the embedded broker`,
      );
    if (s.natsToken && brokerSecurity.operator)
      throw new ConfigError(
        'FNMESH_NATS_TOKEN and FNMESH_BROKER_OPERATOR are both set: the embedded broker takes either a token or JWT users (operator mode), not both; unset FNMESH_NATS_TOKEN (each part then logs in with its own FNMESH_NATS_CREDS)',
      );
    config.brokerSecurity = brokerSecurity;
  }
  if (s.natsToken) config.natsToken = s.natsToken;
  const natsClient = natsClientCredentials(s);
  if (natsClient.credsFile || natsClient.tls) config.natsClient = natsClient;
  return config;
}

const BROKER_SECURITY_ENV: Record<keyof BrokerSecuritySettings, string> = {
  operator: GATEWAY_SETTINGS.brokerOperator.env,
  accounts: GATEWAY_SETTINGS.brokerAccounts.env,
  tlsCert: GATEWAY_SETTINGS.brokerTlsCert.env,
  tlsKey: GATEWAY_SETTINGS.brokerTlsKey.env,
  tlsCa: GATEWAY_SETTINGS.brokerTlsCa.env,
};

/** The embedded broker's security settings that are set; undefined when none is. */
function brokerSecuritySettings(s: {
  brokerOperator?: string;
  brokerAccounts?: string[];
  brokerTlsCert?: string;
  brokerTlsKey?: string;
  brokerTlsCa?: string;
}): BrokerSecuritySettings | undefined {
  const out: BrokerSecuritySettings = {};
  if (s.brokerOperator) out.operator = s.brokerOperator;
  if (s.brokerAccounts && s.brokerAccounts.length > 0) out.accounts = s.brokerAccounts;
  if (s.brokerTlsCert) out.tlsCert = s.brokerTlsCert;
  if (s.brokerTlsKey) out.tlsKey = s.brokerTlsKey;
  if (s.brokerTlsCa) out.tlsCa = s.brokerTlsCa;
  return Object.keys(out).length > 0 ? out : undefined;
}
