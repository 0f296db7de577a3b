/**
 * FunctionService manifests: the same YAML that `kubectl apply` takes, read here from files for the
 * local mesh and the file rule source. One schema, validated at the edge with messages that name the field.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { API_VERSION, KIND } from './crd-names';
import { DEFAULT_FUNCTION_PORT } from './function-protocol';
import { DNS_LABEL, DNS_SUBDOMAIN, FUNCTION_NAME, NAME_RULES } from './names';
import { PULL_POLICIES } from './pull-policy';
export { DEFAULT_FUNCTION } from './names';
import { ruleSchema } from './rule';
import { ConfigError } from './errors';
import { DEFAULT_QUEUE_LENGTH, RETRY_CONDITIONS } from './resilience';
import { failureSettingsProblems } from './failure-settings-checks';

const ms = (max: number) => z.number().int().min(1).max(max);

/** The message for an entry of `retryOn` that is neither a condition nor a 5xx status. */
const badRetryOn = {
  error: (issue: { input?: unknown }) =>
    `${JSON.stringify(issue.input)} is not a failure to retry on; use "${RETRY_CONDITIONS.join('", "')}" or one status from 500 to 599`,
};

/** `retry` of a service (its functions' default) or of one function (over the service's, field by field). */
export const retrySchema = z.strictObject({
  /** Attempts in all, the first included (1: never retried); never past the call's deadline. */
  attempts: z.number().int().min(1).max(10).optional(),
  /** Exponential back-off between attempts with full jitter: the n-th wait is drawn in [0, min(maxMs, initialMs·2ⁿ⁻¹)]. */
  backoff: z.strictObject({ initialMs: ms(60_000).optional(), maxMs: ms(60_000).optional() }).optional(),
  /**
   * Failures of calls that may have run that are retried (calls that never reached the function always are):
   * "reset", "timeout" (of one attempt, see perTryTimeoutMs), "5xx", or one status from 500 to 599.
   */
  retryOn: z
    .array(z.union([z.enum(RETRY_CONDITIONS), z.number().int().min(500, badRetryOn).max(599, badRetryOn)], badRetryOn))
    .max(16)
    .optional(),
  /** The budget of one attempt, milliseconds; needs "timeout" in retryOn, or a cut attempt would fail the call. */
  perTryTimeoutMs: ms(3_600_000).optional(),
});

/** Outlier detection of each replica (done by its sidecar); see common/resilience.ts for the defaults. */
export const outlierDetectionSchema = z.strictObject({
  consecutiveFailures: z.number().int().min(0).max(1000).optional(),
  failureRatio: z.number().min(0).max(1).optional(),
  minCalls: z.number().int().min(1).max(100_000).optional(),
  windowMs: ms(3_600_000).optional(),
  baseEjectionMs: ms(3_600_000).optional(),
  maxEjectionMs: ms(3_600_000).optional(),
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
});

/** The circuit breaker of each function (in the gateway); see common/resilience.ts for the defaults. */
export const circuitBreakerSchema = z.strictObject({
  consecutiveFailures: z.number().int().min(0).max(1000).optional(),
  openMs: ms(3_600_000).optional(),
  maxOpenMs: ms(3_600_000).optional(),
});

export const functionSpecSchema = z.strictObject({
  name: z.string().regex(FUNCTION_NAME, `must be ${NAME_RULES.function}`),
  /** Deadline for one call when the caller gives none, and the cap on what a caller may ask. */
  timeoutMs: z.number().int().min(1).max(3_600_000).optional(),
  rule: ruleSchema.optional(),
  /** Safe to run twice: calls that may have run are retried too (retryOn "reset", "timeout", "5xx" unless retry says). */
  idempotent: z.boolean().optional(),
  retry: retrySchema.optional(),
});

export const envVarSchema = z.strictObject({ name: z.string().min(1), value: z.string().optional() }).passthrough();

export const functionServiceSpecSchema = z.strictObject({
  replicas: z.number().int().min(0).max(1000).default(1),
  /** The port the function serves HTTP on, on 127.0.0.1 in its pod. */
  port: z.number().int().min(1).max(65535).default(DEFAULT_FUNCTION_PORT),
  /** The function's health path; any answer below 500 means the function is up. */
  healthPath: z.string().startsWith('/').default('/healthz'),
  /** Calls one replica runs at once; more wait in its queue. */
  concurrency: z.number().int().min(1).max(100_000).default(64),
  /**
   * Calls one replica holds waiting for a slot; when it is full the replica leaves its queue group until the
   * queue has room again, and the calls it could not take go to another replica (0: no queue).
   */
  queueLength: z.number().int().min(0).max(100_000).default(DEFAULT_QUEUE_LENGTH),
  /** The default retry policy of the service's functions. */
  retry: retrySchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  circuitBreaker: circuitBreakerSchema.optional(),
  /** Default deadline of every function in the service, milliseconds. */
  timeoutMs: z.number().int().min(1).max(3_600_000).default(10_000),
  functions: z.array(functionSpecSchema).default([]),
  /** The container that runs the function in Kubernetes (the operator injects the sidecar beside it). */
  container: z
    .strictObject({
      image: z.string().min(1),
      /** Absent: Kubernetes' default for the image (the operator sets it, desired-deployment.ts). */
      imagePullPolicy: z.enum(PULL_POLICIES).optional(),
      command: z.array(z.string()).optional(),
      args: z.array(z.string()).optional(),
      env: z.array(envVarSchema).optional(),
      resources: z.record(z.string(), z.unknown()).optional(),
    })
    .optional(),
  /** Secrets (in the service's namespace) the kubelet pulls the pod's images with (ignored by `fnmesh local`). */
  imagePullSecrets: z
    .array(z.strictObject({ name: z.string().regex(DNS_SUBDOMAIN, `must be ${NAME_RULES.secret}`).max(253) }))
    .max(32)
    .optional(),
  /** How `fnmesh local` starts one replica's function process on this machine (ignored in a cluster). */
  local: z
    .strictObject({
      command: z.array(z.string().min(1)).min(1),
      /** Working directory, relative to the manifest file's folder. */
      cwd: z.string().optional(),
      env: z.record(z.string(), z.string()).optional(),
    })
    .optional(),
});

export const functionServiceSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z
    .object({
      name: z.string().regex(DNS_LABEL, `must be ${NAME_RULES.service}`),
      namespace: z.string().regex(DNS_LABEL, `must be ${NAME_RULES.namespace}`).default('default'),
      generation: z.number().optional(),
      labels: z.record(z.string(), z.string()).optional(),
      annotations: z.record(z.string(), z.string()).optional(),
    })
    .passthrough(),
  spec: functionServiceSpecSchema,
  status: z.unknown().optional(),
});

export type FunctionService = z.infer<typeof functionServiceSchema>;
export type FunctionServiceSpec = FunctionService['spec'];
export type FunctionSpec = FunctionServiceSpec['functions'][number];

/**
 * A field's path as people read it, like the rule compiler and the API server write it: list items in
 * brackets, and a function by its name, `spec.functions[admin].rule.clauses[1].eval` (by its index when the
 * name is missing, invalid or listed twice).
 */
export function fieldPath(path: readonly PropertyKey[], value: unknown): string {
  let out = '';
  let node: unknown = value;
  path.forEach((segment, i) => {
    if (typeof segment === 'number') {
      const list = Array.isArray(node) ? (node as unknown[]) : [];
      const name = (list[segment] as { name?: unknown } | undefined)?.name;
      const byName =
        i === 2 &&
        path[0] === 'spec' &&
        path[1] === 'functions' &&
        typeof name === 'string' &&
        FUNCTION_NAME.test(name) &&
        list.filter((f) => (f as { name?: unknown } | null)?.name === name).length === 1;
      out += `[${byName ? name : segment}]`;
    } else {
      out += `${out ? '.' : ''}${String(segment)}`;
    }
    node = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[segment] : undefined;
  });
  return out || '(document)';
}

function describeIssues(error: z.ZodError, value: unknown): string {
  return error.issues.map((issue) => `${fieldPath(issue.path, value)}: ${issue.message}`).join('; ');
}

/** Validates one parsed object; throws ConfigError naming the source and each bad field. */
export function parseFunctionService(value: unknown, source: string): FunctionService {
  const result = functionServiceSchema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(`${source}: invalid FunctionService: ${describeIssues(result.error, value)}`);
  }
  const fs = result.data;
  const seen = new Set<string>();
  for (const fn of fs.spec.functions) {
    if (seen.has(fn.name)) {
      throw new ConfigError(
        `${source}: invalid FunctionService: spec.functions: function "${fn.name}" is listed twice; list each function once`,
      );
    }
    seen.add(fn.name);
  }
  const problems = failureSettingsProblems(fs.spec);
  if (problems.length > 0) {
    const text = problems.map((p) => `${p.path}: ${p.message}`).join('; ');
    throw new ConfigError(`${source}: invalid FunctionService: ${text}`);
  }
  return fs;
}

/** Parses every YAML document in a text; documents of other kinds are skipped. */
export function parseManifests(text: string, source: string): FunctionService[] {
  const out: FunctionService[] = [];
  const docs = parseAllDocuments(text);
  docs.forEach((doc, i) => {
    const where = docs.length > 1 ? `${source} (document ${i + 1})` : source;
    if (doc.errors.length > 0) throw new ConfigError(`${where}: not valid YAML: ${doc.errors[0]!.message}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (typeof value !== 'object' || (value as { kind?: unknown }).kind !== KIND) return;
    out.push(parseFunctionService(value, where));
  });
  return out;
}

export async function loadManifestFile(file: string): Promise<FunctionService[]> {
  const text = await readFile(file, 'utf8');
  return parseManifests(text, file);
}

export function isManifestFile(file: string): boolean {
  const ext = path.extname(file).toLowerCase();
  return ext === '.yaml' || ext === '.yml';
}

export function serviceKey(fs: { metadata: { namespace: string; name: string } }): string {
  return `${fs.metadata.namespace}/${fs.metadata.name}`;
}
