/**
 * FunctionService specs whose failure settings (retry, outlierDetection, circuitBreaker) contradict each
 * other, with what each validator says: common/manifest.test.ts checks the message of the manifest schema
 * (`fnmesh validate`, `fnmesh local`), test/crd.test.ts that a real API server refuses the same spec through
 * the CRD's CEL rules. One list, so the two cannot drift apart.
 */

export interface RefusedSpec {
  name: string;
  /** The spec of a FunctionService named "shop" (one function "charge" unless the spec lists others). */
  spec: Record<string, unknown>;
  /** parseFunctionService's message after "<source>: invalid FunctionService: ". */
  zod: string;
  /** Fragments of the API server's answer (the field path and the gist of the message). */
  apiServer: string[];
}

const charge = (fields: Record<string, unknown>) => ({ functions: [{ name: 'charge', ...fields }] });

export const REFUSED_SPECS: RefusedSpec[] = [
  {
    name: "the service's backoff.initialMs above its backoff.maxMs",
    spec: { retry: { backoff: { initialMs: 500, maxMs: 100 } } },
    zod:
      'spec.retry.backoff.initialMs: 500 is more than maxMs, 100; make initialMs at most maxMs ' +
      '(each wait between attempts doubles from initialMs up to maxMs)',
    apiServer: ['spec.retry.backoff.initialMs', 'must be at most maxMs'],
  },
  {
    name: "the service's backoff.initialMs above the default maxMs",
    spec: { retry: { backoff: { initialMs: 1000 } } },
    zod:
      'spec.retry.backoff.initialMs: 1000 is more than maxMs, 250 (the default); make initialMs at most maxMs ' +
      '(each wait between attempts doubles from initialMs up to maxMs)',
    apiServer: ['spec.retry.backoff.initialMs', 'must be at most maxMs (when not set: initialMs 10, maxMs 250)'],
  },
  {
    name: "a function's backoff.initialMs above the service's backoff.maxMs",
    spec: { retry: { backoff: { maxMs: 50 } }, ...charge({ retry: { backoff: { initialMs: 100 } } }) },
    zod:
      'spec.functions[charge].retry.backoff.initialMs: 100 is more than maxMs, 50 (spec.retry.backoff.maxMs); ' +
      'make initialMs at most maxMs (each wait between attempts doubles from initialMs up to maxMs)',
    apiServer: ['spec.functions', 'spec.functions[charge]: retry.backoff.initialMs is more than its backoff.maxMs'],
  },
  {
    name: 'outlierDetection.baseEjectionMs above the default maxEjectionMs',
    spec: { outlierDetection: { baseEjectionMs: 90_000 } },
    zod:
      'spec.outlierDetection.baseEjectionMs: 90000 is more than maxEjectionMs, 60000 (the default); make ' +
      'baseEjectionMs at most maxEjectionMs (each ejection in a row doubles from baseEjectionMs up to maxEjectionMs)',
    apiServer: ['spec.outlierDetection.baseEjectionMs', 'must be at most maxEjectionMs'],
  },
  {
    name: 'circuitBreaker.maxOpenMs below its openMs',
    spec: { circuitBreaker: { openMs: 2000, maxOpenMs: 1000 } },
    zod:
      'spec.circuitBreaker.openMs: 2000 is more than maxOpenMs, 1000; make openMs at most maxOpenMs ' +
      '(each reopening after a failed probe doubles from openMs up to maxOpenMs)',
    apiServer: ['spec.circuitBreaker.openMs', 'must be at most maxOpenMs'],
  },
  {
    name: "the service's perTryTimeoutMs without a retryOn",
    spec: { retry: { perTryTimeoutMs: 500 } },
    zod:
      'spec.retry.perTryTimeoutMs: needs "timeout" in retryOn, and no retryOn is given: an attempt ' +
      'cut at its per-try timeout may have run, so without "timeout" it fails the call instead of being retried; ' +
      'add "timeout" to retryOn, or remove perTryTimeoutMs',
    apiServer: ['spec.retry.perTryTimeoutMs', 'needs "timeout" in retryOn'],
  },
  {
    name: "a function's perTryTimeoutMs with a retryOn that lacks timeout",
    spec: charge({ retry: { perTryTimeoutMs: 500, retryOn: ['5xx'] } }),
    zod:
      'spec.functions[charge].retry.perTryTimeoutMs: needs "timeout" in retryOn, and retryOn is ' +
      '["5xx"] (spec.functions[charge].retry.retryOn): an attempt cut at its per-try timeout may have run, so ' +
      'without "timeout" it fails the call instead of being retried; add "timeout" to retryOn (or set ' +
      'idempotent: true and leave retryOn out), or remove perTryTimeoutMs',
    apiServer: ['spec.functions', 'spec.functions[charge]: retry.perTryTimeoutMs', 'needs "timeout" in retryOn'],
  },
  {
    name: "a function's retryOn without timeout under the service's perTryTimeoutMs",
    spec: { retry: { perTryTimeoutMs: 500, retryOn: ['timeout'] }, ...charge({ retry: { retryOn: [503] } }) },
    zod:
      'spec.functions[charge].retry.retryOn: [503] has no "timeout", and the function has perTryTimeoutMs, 500 ' +
      '(spec.retry.perTryTimeoutMs): an attempt cut at its per-try timeout may have run, so without "timeout" it ' +
      'fails the call instead of being retried; add "timeout" to retryOn (or set idempotent: true and leave retryOn ' +
      'out), or remove perTryTimeoutMs',
    apiServer: ['spec.functions[charge]: retry.perTryTimeoutMs', 'needs "timeout" in retryOn'],
  },
  {
    name: "the service's perTryTimeoutMs above its timeoutMs",
    spec: { timeoutMs: 1000, retry: { perTryTimeoutMs: 2000, retryOn: ['timeout'] } },
    zod:
      "spec.retry.perTryTimeoutMs: 2000 is more than the service's timeoutMs, 1000 (spec.timeoutMs); " +
      "make perTryTimeoutMs at most timeoutMs (one attempt cannot outlast the call's deadline)",
    apiServer: ['spec.retry.perTryTimeoutMs', "must be at most the service's timeoutMs"],
  },
  {
    name: "a function's perTryTimeoutMs above its own timeoutMs",
    spec: charge({ timeoutMs: 300, idempotent: true, retry: { perTryTimeoutMs: 500 } }),
    zod:
      "spec.functions[charge].retry.perTryTimeoutMs: 500 is more than the function's timeoutMs, 300 " +
      "(spec.functions[charge].timeoutMs); make perTryTimeoutMs at most timeoutMs (one attempt cannot outlast the call's deadline)",
    apiServer: ['spec.functions[charge]: retry.perTryTimeoutMs', 'is more than its timeoutMs'],
  },
  {
    name: "a function's timeoutMs below the service's perTryTimeoutMs",
    spec: { retry: { perTryTimeoutMs: 500, retryOn: ['timeout'] }, ...charge({ timeoutMs: 200 }) },
    zod:
      "spec.functions[charge].timeoutMs: 200 is less than the function's perTryTimeoutMs, 500 " +
      '(spec.retry.perTryTimeoutMs); make timeoutMs at least perTryTimeoutMs, or give the function a smaller ' +
      "perTryTimeoutMs of its own (one attempt cannot outlast the call's deadline)",
    apiServer: ['spec.functions[charge]: retry.perTryTimeoutMs', 'is more than its timeoutMs'],
  },
];

/** Specs whose failure settings fit together: both validators take them. */
export const ACCEPTED_SPECS: { name: string; spec: Record<string, unknown> }[] = [
  {
    name: 'every failure setting, consistent',
    spec: {
      timeoutMs: 5000,
      queueLength: 16,
      retry: {
        attempts: 3,
        backoff: { initialMs: 20, maxMs: 200 },
        retryOn: ['reset', 'timeout', 503],
        perTryTimeoutMs: 1000,
      },
      outlierDetection: {
        consecutiveFailures: 3,
        failureRatio: 0.25,
        minCalls: 10,
        windowMs: 5000,
        baseEjectionMs: 1000,
        maxEjectionMs: 1000,
        maxEjectionPercent: 34,
      },
      circuitBreaker: { consecutiveFailures: 10, openMs: 100, maxOpenMs: 100 },
      functions: [
        { name: 'charge', retry: { attempts: 1 } },
        { name: 'quote', idempotent: true, timeoutMs: 1000, retry: { backoff: { maxMs: 20 } } },
      ],
    },
  },
  {
    name: "a function's perTryTimeoutMs with idempotent: true (its retryOn includes timeout)",
    spec: charge({ idempotent: true, retry: { perTryTimeoutMs: 500 } }),
  },
  {
    name: "a function's own retryOn with timeout under the service's perTryTimeoutMs (which the service's retryOn covers)",
    spec: {
      retry: { perTryTimeoutMs: 500, retryOn: ['timeout'] },
      ...charge({ retry: { retryOn: ['timeout', '5xx'] } }),
    },
  },
];

/** The FunctionService object around a spec. */
export function functionService(spec: Record<string, unknown>, name = 'shop'): Record<string, unknown> {
  return { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', metadata: { name }, spec };
}
