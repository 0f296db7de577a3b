/**
 * The sidecar's settings, one row each (common/config.ts): read by config.ts, offered as flags by the CLI,
 * listed in the README's configuration reference. Light: the CLI imports it into every process, and the
 * sidecar's memory is watched.
 */
import { ConfigError } from '../common/errors';
import { NAME_RULES, isFunctionName, isServiceName } from '../common/names';
import { logLevelSetting, setting } from '../common/config';
import * as parsers from '../common/parsers';
import { NATS_CLIENT_SETTINGS } from '../common/nats-client-settings';
// The variable names are the contract with every starter of a sidecar (the operator, the local mesh).
import { DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_SIDECAR_OPS_PORT, SIDECAR_ENV } from '../common/sidecar-env';
import { DEFAULT_CALL_API_PORT, DEFAULT_FUNCTION_PORT } from '../common/function-protocol';
import {
  DEFAULT_OUTLIER_DETECTION,
  DEFAULT_QUEUE_LENGTH,
  resolveOutlierDetection,
  type OutlierDetectionPolicy,
} from '../common/resilience';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1', '[::1]']);

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

const functionNames: parsers.Parser<string[]> = (v, name) => {
  const functions = parsers.commaList(v, name);
  const bad = functions.find((fn) => !isFunctionName(fn));
  if (bad !== undefined)
    throw new ConfigError(`${name}: "${bad}" is not a valid function name: it accepts ${NAME_RULES.function}`);
  return functions;
};

/** The call API lets any caller act as this service: loopback only. */
const loopbackListen: parsers.Parser<parsers.ListenAddress> = (v, name) => {
  const address = parsers.listenAddress(v, name);
  if (!isLoopbackHost(address.host)) {
    throw new ConfigError(
      `${name}="${v}" is not valid: the call API lets any caller act as this service, ` +
        'so it must listen on a loopback address only, such as 127.0.0.1:3500',
    );
  }
  return address;
};

const milliseconds = parsers.wholeNumber({ min: 1, max: 24 * 3600 * 1000 });

/** The fields of `spec.outlierDetection` and what each accepts (the manifest's schema, common/manifest.ts). */
const OUTLIER_FIELDS: Record<keyof OutlierDetectionPolicy, { min: number; max: number; whole: boolean }> = {
  consecutiveFailures: { min: 0, max: 1000, whole: true },
  failureRatio: { min: 0, max: 1, whole: false },
  minCalls: { min: 1, max: 100_000, whole: true },
  windowMs: { min: 1, max: 3_600_000, whole: true },
  baseEjectionMs: { min: 1, max: 3_600_000, whole: true },
  maxEjectionMs: { min: 1, max: 3_600_000, whole: true },
  maxEjectionPercent: { min: 0, max: 100, whole: true },
};

/** JSON of the manifest's `spec.outlierDetection`, checked field by field; the fields left out take the defaults. */
export const outlierDetection: parsers.Parser<OutlierDetectionPolicy> = (v, name) => {
  const parsed = parsers.json(v, name);
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ConfigError(`${name} must be a JSON object such as {"consecutiveFailures": 5} (spec.outlierDetection)`);
  const given: Partial<OutlierDetectionPolicy> = {};
  for (const [field, value] of Object.entries(parsed)) {
    const rule = OUTLIER_FIELDS[field as keyof OutlierDetectionPolicy];
    if (!rule)
      throw new ConfigError(
        `${name}: "${field}" is not a field of spec.outlierDetection; it has ${Object.keys(OUTLIER_FIELDS).join(', ')}`,
      );
    if (
      typeof value !== 'number' ||
      !Number.isFinite(value) ||
      (rule.whole && !Number.isInteger(value)) ||
      value < rule.min ||
      value > rule.max
    )
      throw new ConfigError(
        `${name}: ${field} is ${JSON.stringify(value)}; it accepts ${rule.whole ? 'a whole number' : 'a number'} from ${rule.min} to ${rule.max}`,
      );
    given[field as keyof OutlierDetectionPolicy] = value;
  }
  // a baseEjectionMs above maxEjectionMs is not refused (the manifest allows it): every ejection lasts maxEjectionMs
  return resolveOutlierDetection(given);
};

/**
 * FNMESH_IDLE_GC_MS's second collection comes this long after the first: more than V8's 5 s
 * allocation-throughput window, so that it sees the quiet and shrinks the young generation (idle-gc.ts).
 */
export const SHRINK_GAP_MS = 6_000;

export const SIDECAR_SETTINGS = {
  namespace: setting({
    env: SIDECAR_ENV.namespace,
    flag: '--namespace <ns>',
    default: 'default',
    parse: parsers.namespaceName,
    help: 'namespace of the service this replica serves',
  }),
  service: setting({
    env: SIDECAR_ENV.service,
    flag: '--service <name>',
    required: `the service name, ${NAME_RULES.service}`,
    parse: parsers.matching(NAME_RULES.service, isServiceName),
    help: 'the service this replica serves',
  }),
  functions: setting({
    env: SIDECAR_ENV.functions,
    flag: '--functions <names>',
    parse: functionNames,
    help: 'declared function names, comma-separated (for NATS micro discovery)',
  }),
  natsUrl: setting({
    env: SIDECAR_ENV.natsUrl,
    flag: '--nats-url <urls>',
    required: 'comma-separated NATS URLs such as nats://nats:4222',
    parse: parsers.natsUrls,
    help: 'NATS servers, comma-separated',
  }),
  natsToken: setting({
    env: SIDECAR_ENV.natsToken,
    flag: '--nats-token <token>',
    parse: parsers.text,
    help: 'NATS auth token',
  }),
  natsUser: setting({
    env: SIDECAR_ENV.natsUser,
    flag: '--nats-user <user>',
    parse: parsers.text,
    help: 'NATS user name',
  }),
  natsPassword: setting({
    env: SIDECAR_ENV.natsPassword,
    flag: '--nats-password <password>',
    parse: parsers.text,
    help: 'NATS password (with `FNMESH_NATS_USER`)',
  }),
  // the replica's NATS user (the operator mounts its .creds) and TLS: the rows every NATS client shares
  ...NATS_CLIENT_SETTINGS,
  functionPort: setting({
    env: SIDECAR_ENV.functionPort,
    flag: '--function-port <port>',
    default: String(DEFAULT_FUNCTION_PORT),
    parse: parsers.port(),
    help: "the function's port on 127.0.0.1",
  }),
  healthPath: setting({
    env: SIDECAR_ENV.healthPath,
    flag: '--health-path <path>',
    default: '/healthz',
    parse: parsers.matching(
      'a URL path starting with "/", such as /healthz',
      (v) => v.startsWith('/') && !/\s/.test(v),
    ),
    help: "the function's health check",
  }),
  concurrency: setting({
    env: SIDECAR_ENV.concurrency,
    flag: '--concurrency <n>',
    default: '64',
    parse: parsers.wholeNumber({ min: 1, max: 100_000 }),
    help: 'calls run at once by this replica; more wait in its queue (`FNMESH_QUEUE_LENGTH`)',
  }),
  queueLength: setting({
    env: SIDECAR_ENV.queueLength,
    flag: '--queue-length <n>',
    default: String(DEFAULT_QUEUE_LENGTH),
    parse: parsers.wholeNumber({ min: 0, max: 100_000 }),
    help: 'calls that wait (first in, first out) for one of the `FNMESH_CONCURRENCY` slots; when it is full the replica leaves its queue group until it is empty again, and calls that still arrive are answered "not executed" (the gateway sends them to another replica)',
  }),
  outlierDetection: setting({
    env: SIDECAR_ENV.outlierDetection,
    flag: '--outlier-detection <json>',
    unset: `the defaults: \`${JSON.stringify(DEFAULT_OUTLIER_DETECTION)}\``,
    parse: outlierDetection,
    help: "JSON of the FunctionService's `spec.outlierDetection` (fields left out take the defaults): when the function keeps failing (5xx, past its deadline, a connection broken mid-call), the replica leaves its queue group for a doubling back-off, never taking more than `maxEjectionPercent` of the service's replicas out",
  }),
  timeoutMs: setting({
    env: SIDECAR_ENV.timeoutMs,
    flag: '--timeout-ms <ms>',
    default: '10000',
    parse: milliseconds,
    help: 'budget of a call that carries none',
  }),
  opsListen: setting({
    env: SIDECAR_ENV.opsListen,
    flag: '--ops-listen <host:port>',
    default: `0.0.0.0:${DEFAULT_SIDECAR_OPS_PORT}`,
    parse: parsers.listenAddress,
    help: "`/healthz`, `/readyz` (NATS connected, function healthy, replica not ejected), `/metrics`, and `GET /drain` (stop taking calls and finish in-flight ones; the operator's preStop hook on the function container calls it)",
  }),
  callListen: setting({
    env: SIDECAR_ENV.callListen,
    flag: '--call-listen <host:port>',
    default: `127.0.0.1:${DEFAULT_CALL_API_PORT}`,
    parse: loopbackListen,
    help: 'the localhost call API (loopback only)',
  }),
  drainTimeoutMs: setting({
    env: SIDECAR_ENV.drainTimeoutMs,
    flag: '--drain-timeout-ms <ms>',
    default: String(DEFAULT_DRAIN_TIMEOUT_MS),
    parse: parsers.wholeNumber({ min: 0, max: 24 * 3600 * 1000 }),
    help: 'on SIGTERM or `GET /drain`: how long in-flight calls may take to finish',
  }),
  idleGcMs: setting({
    env: SIDECAR_ENV.idleGcMs,
    flag: '--idle-gc-ms <ms>',
    default: '5000',
    parse: parsers.wholeNumber({ min: 0, max: 24 * 3600 * 1000 }),
    help: 'after this long without calls (none in flight), two full garbage collections 6 s apart (the second lets V8 shrink its young generation), so resident memory returns towards the idle figure after load (each a pause of 10–50 ms while nothing runs); 0 turns it off',
  }),
  replicaId: setting({
    env: SIDECAR_ENV.replicaId,
    flag: '--replica-id <id>',
    unset: 'random',
    parse: parsers.matching('letters, digits, "-" and "_" (at most 128)', (v) => /^[A-Za-z0-9_-]{1,128}$/.test(v)),
    help: "this replica's id in discovery and logs",
  }),
  logLevel: logLevelSetting,
};
