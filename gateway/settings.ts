/**
 * The gateway's settings, one row each (common/config.ts): read by config.ts, offered as flags by the CLI,
 * listed in the README's configuration reference. Light: the CLI imports it into every process.
 */
import { ConfigError } from '../common/errors';
import { parseOriginPattern } from './cors';
import { kubeconfigSetting, logLevelSetting, setting, variant } from '../common/config';
import { NAME_RULES, isNamespaceName } from '../common/names';
import * as parsers from '../common/parsers';
import { BROKER_SETTINGS } from '../broker/settings';
import { DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_PARAMS_DEPTH, DEFAULT_MAX_TOKEN_BYTES } from './limits';
import { NATS_CLIENT_SETTINGS } from '../common/nats-client-settings';

export const RULE_SOURCES = ['files', 'kubernetes'] as const;

/** The ops listener's port (`/metrics`, `/v1/services`, probes) when FNMESH_OPS_LISTEN is not set. */
export const DEFAULT_GATEWAY_OPS_PORT = 9091;

/** Fewest characters of FNMESH_ADMIN_TOKEN: it guards the listing and the metrics on the call port. */
export const MIN_ADMIN_TOKEN_LENGTH = 32;
export type RuleSourceKind = (typeof RULE_SOURCES)[number];

/** "*" alone, or comma-separated origins (scheme, host, optional port, or `:*` for any port). */
const corsOrigins: parsers.Parser<string[] | '*'> = (v, name) => {
  const list = parsers.commaList(v, name);
  if (list.includes('*')) {
    if (list.length > 1) throw new ConfigError(`${name}="${v}" is not valid: use "*" alone or a comma list of origins`);
    return '*';
  }
  for (const origin of list) {
    if (!parseOriginPattern(origin)) {
      throw new ConfigError(
        `${name}: "${origin}" is not a valid origin: it accepts "*" or comma-separated origins such as https://app.example.com (scheme, host and optional port, no path or trailing slash), or http://localhost:* for any port of one scheme and host`,
      );
    }
  }
  return list;
};

export const GATEWAY_SETTINGS = {
  listen: setting({
    env: 'FNMESH_LISTEN',
    flag: '--listen <host:port>',
    default: '0.0.0.0:8080',
    parse: parsers.listenAddress,
    help: 'HTTP call API address',
  }),
  opsListen: setting({
    env: 'FNMESH_OPS_LISTEN',
    flag: '--ops-listen <host:port>',
    default: `0.0.0.0:${DEFAULT_GATEWAY_OPS_PORT}`,
    parse: parsers.listenAddress,
    help: '`/metrics`, `GET /v1/services` (every rule with its definition), `/healthz`, `/readyz`: the ops listener; keep it off the public network (the call port serves only the probes, and the listing and metrics to `FNMESH_ADMIN_TOKEN`)',
  }),
  adminToken: setting({
    env: 'FNMESH_ADMIN_TOKEN',
    flag: '--admin-token <token>',
    unset: 'none: the call port does not serve them',
    parse: (v, name) => {
      if (v.length < MIN_ADMIN_TOKEN_LENGTH)
        throw new ConfigError(
          `${name} is ${v.length} characters long: use at least ${MIN_ADMIN_TOKEN_LENGTH} random characters (e.g. openssl rand -hex 32), or unset it to serve the listing and the metrics on the ops listener only`,
        );
      return v;
    },
    help: 'serve `GET /v1/services` and `/metrics` on the call port too, to `Authorization: Bearer <this token>`',
  }),
  natsUrl: setting({
    env: 'FNMESH_NATS_URL',
    flag: '--nats-url <urls>',
    unset: 'the embedded broker',
    parse: parsers.natsUrls,
    help: 'external NATS servers, comma-separated',
  }),
  // The embedded broker's own settings (broker/settings.ts), under the gateway's flag names.
  natsToken: variant(BROKER_SETTINGS.token, {
    flag: '--nats-token <token>',
    help: 'NATS auth token (also required by the embedded broker when set)',
  }),
  // the gateway's NATS user and TLS: the rows every NATS client shares
  ...NATS_CLIENT_SETTINGS,
  brokerHost: variant(BROKER_SETTINGS.host, {
    flag: '--broker-host <host>',
    help: 'where the embedded broker listens',
  }),
  brokerPort: variant(BROKER_SETTINGS.port, { flag: '--broker-port <port>', help: "the embedded broker's port" }),
  brokerOperator: variant(BROKER_SETTINGS.operator, {
    flag: '--broker-operator <file>',
    help: "the embedded broker's JWT auth (nats-server's operator mode): a file with the trusted operator's JWT or public key; `fnmesh local` writes one for each run",
  }),
  brokerAccounts: variant(BROKER_SETTINGS.accounts, {
    flag: '--broker-accounts <files>',
    help: 'account JWT files the embedded broker trusts, comma-separated; needs FNMESH_BROKER_OPERATOR',
  }),
  brokerTlsCert: variant(BROKER_SETTINGS.tlsCert, {
    flag: '--broker-tls-cert <file>',
    help: 'the embedded broker serves TLS with this PEM certificate (chain); needs FNMESH_BROKER_TLS_KEY',
  }),
  brokerTlsKey: variant(BROKER_SETTINGS.tlsKey, { flag: '--broker-tls-key <file>' }),
  brokerTlsCa: variant(BROKER_SETTINGS.tlsCa, {
    flag: '--broker-tls-ca <file>',
    help: 'the embedded broker requires client certificates signed by this PEM CA bundle',
  }),
  manifests: setting({
    env: 'FNMESH_MANIFESTS',
    flag: '--manifests <paths>',
    parse: parsers.commaList,
    help: 'comma-separated manifest files/folders to take rules from (watched)',
  }),
  ruleSource: setting({
    env: 'FNMESH_RULE_SOURCE',
    flag: '--rule-source <source>',
    default: 'files',
    parse: parsers.oneOf(RULE_SOURCES),
    help: 'where rules come from: `files` (`FNMESH_MANIFESTS`) or `kubernetes` (the FunctionService objects, watched live; needs `deploy/rbac/gateway.yaml` and `kubectl apply -f crds/`); `kubernetes` with `FNMESH_MANIFESTS` set is refused',
  }),
  kubeconfig: variant(kubeconfigSetting, { help: 'kubeconfig of the `kubernetes` rule source' }),
  watchNamespace: setting({
    env: 'FNMESH_WATCH_NAMESPACE',
    flag: '--watch-namespace <ns>',
    unset: 'all namespaces',
    parse: (v, name) => {
      if (!isNamespaceName(v))
        throw new ConfigError(
          `${name}="${v}" is not a valid namespace name: ${NAME_RULES.namespace}; unset it to watch all namespaces`,
        );
      return v;
    },
    help: 'the one namespace whose FunctionServices the `kubernetes` rule source reads',
  }),
  jwtSecret: setting({
    env: 'FNMESH_JWT_SECRET',
    flag: '--jwt-secret <secrets>',
    parse: parsers.commaList,
    help: 'HS256 secrets, comma-separated, each ≥ 32 bytes',
  }),
  jwksFile: setting({
    env: 'FNMESH_JWKS_FILE',
    flag: '--jwks-file <file>',
    parse: parsers.text,
    help: 'JWKS file of public keys (RS/PS/ES 256–512, EdDSA), reloaded when it changes',
  }),
  jwksUrl: setting({
    env: 'FNMESH_JWKS_URL',
    flag: '--jwks-url <url>',
    parse: parsers.httpUrl('a JWKS document'),
    help: 'JWKS URL of public keys',
  }),
  jwtIssuer: setting({
    env: 'FNMESH_JWT_ISSUER',
    flag: '--jwt-issuer <iss>',
    parse: parsers.text,
    help: 'required `iss`',
  }),
  jwtAudience: setting({
    env: 'FNMESH_JWT_AUDIENCE',
    flag: '--jwt-audience <aud>',
    parse: parsers.text,
    help: 'required `aud`',
  }),
  jwtRequireExp: setting({
    env: 'FNMESH_JWT_REQUIRE_EXP',
    flag: '--jwt-require-exp <bool>',
    default: 'true',
    parse: parsers.bool,
    help: 'refuse tokens without `exp`; `false` accepts tokens that never expire (revocable only by rotating keys)',
  }),
  jwtClockToleranceSec: setting({
    env: 'FNMESH_JWT_CLOCK_TOLERANCE_SEC',
    flag: '--jwt-clock-tolerance-sec <s>',
    default: '5',
    parse: parsers.wholeNumber({ min: 0, max: 3600 }),
    help: 'clock skew allowed for `exp`, `nbf` and `iat`, seconds',
  }),
  delegationKeyFile: setting({
    env: 'FNMESH_DELEGATION_KEY_FILE',
    flag: '--delegation-key-file <file>',
    unset: 'a random key per process (one gateway replica only)',
    parse: parsers.text,
    help: 'file of the key (≥ 32 bytes) that signs the delegation tokens of nested calls; every gateway replica must share it',
  }),
  defaultRule: setting({
    env: 'FNMESH_DEFAULT_RULE',
    flag: '--default-rule <json>',
    unset: 'deny',
    parse: parsers.json,
    help: 'gateway-wide default rule, JSON, e.g. `{"rule":"authenticated"}`',
  }),
  maxBodyBytes: setting({
    env: 'FNMESH_MAX_BODY_BYTES',
    flag: '--max-body-bytes <n>',
    unset: `${DEFAULT_MAX_BODY_BYTES}, lowered to fit an external NATS server's \`max_payload\``,
    parse: parsers.wholeNumber({ min: 16, max: 64 * 1024 * 1024 }),
    help: "request body limit (413 above it); the embedded broker's max payload is sized to carry it, and a value an external NATS server's `max_payload` cannot carry (with the headers of a call) stops the gateway at start",
  }),
  maxParamsDepth: setting({
    env: 'FNMESH_MAX_PARAMS_DEPTH',
    flag: '--max-params-depth <n>',
    default: String(DEFAULT_MAX_PARAMS_DEPTH),
    parse: parsers.wholeNumber({ min: 1, max: 1000 }),
    help: 'how deep arrays and objects may nest in `params` (`[]` is 1; 400 deeper)',
  }),
  maxTokenBytes: setting({
    env: 'FNMESH_MAX_TOKEN_BYTES',
    flag: '--max-token-bytes <n>',
    default: String(DEFAULT_MAX_TOKEN_BYTES),
    parse: parsers.wholeNumber({ min: 256, max: 256 * 1024 }),
    help: 'bearer token limit (431 above it); bounds the headers a call carries over NATS',
  }),
  maxHeaderBytes: setting({
    env: 'FNMESH_MAX_HEADER_BYTES',
    flag: '--max-header-bytes <n>',
    default: '16384',
    parse: parsers.wholeNumber({ min: 1024, max: 1024 * 1024 }),
    help: 'request head limit, the request line and every header together (431 above it); it must hold the largest bearer token you accept',
  }),
  headersTimeoutMs: setting({
    env: 'FNMESH_HEADERS_TIMEOUT_MS',
    flag: '--headers-timeout-ms <ms>',
    default: '10000',
    parse: parsers.wholeNumber({ min: 1, max: 600_000 }),
    help: 'time a client has to send the whole request head, from its first byte or from its connection (408 and closed after it); at most `FNMESH_RECEIVE_TIMEOUT_MS`',
  }),
  receiveTimeoutMs: setting({
    env: 'FNMESH_RECEIVE_TIMEOUT_MS',
    flag: '--receive-timeout-ms <ms>',
    default: '30000',
    parse: parsers.wholeNumber({ min: 1, max: 3_600_000 }),
    help: "time a client has to send a whole request, head and body (408 and closed after it); the call's deadline starts once it is in",
  }),
  keepAliveTimeoutMs: setting({
    env: 'FNMESH_KEEP_ALIVE_TIMEOUT_MS',
    flag: '--keep-alive-timeout-ms <ms>',
    default: '65000',
    parse: parsers.wholeNumber({ min: 1, max: 3_600_000 }),
    help: 'how long an idle keep-alive connection stays open; keep it above the idle timeout of a load balancer in front (60 s on AWS ALB and ingress-nginx), which would otherwise reuse a connection the gateway is closing',
  }),
  maxConnections: setting({
    env: 'FNMESH_MAX_CONNECTIONS',
    flag: '--max-connections <n>',
    default: '10000',
    parse: parsers.wholeNumber({ min: 1, max: 1_000_000 }),
    help: "open connections to the call port; more are closed at once without an answer (counted in `fnmesh_gateway_connections_refused_total`); keep it below the process's file limit (`ulimit -n`)",
  }),
  maxTimeoutMs: setting({
    env: 'FNMESH_MAX_TIMEOUT_MS',
    flag: '--max-timeout-ms <ms>',
    default: '60000',
    parse: parsers.wholeNumber({ min: 1, max: 3_600_000 }),
    help: 'absolute cap on any call deadline',
  }),
  corsOrigins: setting({
    env: 'FNMESH_CORS_ORIGINS',
    flag: '--cors-origins <origins>',
    unset: 'none',
    parse: corsOrigins,
    help: '`*` or comma-separated origins allowed to call from a browser; `http://localhost:*` allows any port',
  }),
  corsCredentials: setting({
    env: 'FNMESH_CORS_CREDENTIALS',
    flag: '--cors-credentials <bool>',
    unset: 'true for a list of origins, false with `*`',
    parse: parsers.bool,
    help: 'answer listed origins with `Access-Control-Allow-Credentials: true` (never with `*`, which browsers refuse)',
  }),
  exposeRuleReasons: setting({
    env: 'FNMESH_EXPOSE_RULE_REASONS',
    flag: '--expose-rule-reasons <bool>',
    default: 'false',
    parse: parsers.bool,
    help: "put the rule's denial reason in 403 messages (it is always logged)",
  }),
  shutdownTimeoutMs: setting({
    env: 'FNMESH_SHUTDOWN_TIMEOUT_MS',
    flag: '--shutdown-timeout-ms <ms>',
    default: '10000',
    parse: parsers.wholeNumber({ min: 0, max: 600_000 }),
    help: 'how long a stopping gateway waits for in-flight calls',
  }),
  logLevel: logLevelSetting,
};
