/**
 * The checks of a FunctionService's failure settings (retry, outlierDetection, circuitBreaker) that span
 * more than one field, on a spec the schema took (pure). crds/generate.ts writes the same checks as CEL rules,
 * so `fnmesh validate`, `fnmesh local` and the API server refuse the same manifests; test/helpers/
 * refused-manifests.ts holds the manifests both are tried with.
 *
 * A function's retry policy is the service's `retry` with the function's own over it, field by field
 * (common/resilience.ts), so a function is checked as resolved; a problem is reported where it was written:
 * at the function when its own entry takes part, at spec.retry otherwise (once, not for every function).
 */
import type { FunctionServiceSpec, FunctionSpec } from './manifest';
import {
  DEFAULT_CIRCUIT_BREAKER,
  DEFAULT_OUTLIER_DETECTION,
  DEFAULT_RETRY,
  resolveRetryPolicy,
  type RetryManifest,
} from './resilience';

export interface SpecProblem {
  /** The field, as fieldPath() writes it: `spec.functions[charge].retry.perTryTimeoutMs`. */
  path: string;
  message: string;
}

/** A value and where it came from, for the messages. */
interface Sourced {
  value: number;
  /** `undefined`: the field itself (or its sibling in the same object); otherwise a path or "the default". */
  from?: string;
}

const quote = (s: Sourced): string => `${s.value}${s.from ? ` (${s.from})` : ''}`;

/** `low` ≤ `high`, reported at whichever of the two the object at `at` sets (the low one when both). */
function ordered(
  at: string,
  lowName: string,
  highName: string,
  own: Record<string, number | undefined>,
  low: Sourced,
  high: Sourced,
  why: string,
): SpecProblem[] {
  if (low.value <= high.value) return [];
  if (own[lowName] !== undefined || own[highName] === undefined)
    return [
      {
        path: `${at}.${lowName}`,
        message: `${low.value} is more than ${highName}, ${quote(high)}; make ${lowName} at most ${highName} (${why})`,
      },
    ];
  return [
    {
      path: `${at}.${highName}`,
      message: `${high.value} is less than ${lowName}, ${quote(low)}; make ${highName} at least ${lowName} (${why})`,
    },
  ];
}

const BACKOFF_WHY = 'each wait between attempts doubles from initialMs up to maxMs';

function backoffProblems(
  at: string,
  own: RetryManifest | undefined,
  service: RetryManifest | undefined,
): SpecProblem[] {
  const b = own?.backoff;
  if (b === undefined || (b.initialMs === undefined && b.maxMs === undefined)) return [];
  const pick = (field: 'initialMs' | 'maxMs'): Sourced => {
    if (b[field] !== undefined) return { value: b[field] };
    const s = service?.backoff?.[field];
    return s !== undefined
      ? { value: s, from: `spec.retry.backoff.${field}` }
      : { value: DEFAULT_RETRY.backoff[field], from: 'the default' };
  };
  return ordered(`${at}.backoff`, 'initialMs', 'maxMs', { ...b }, pick('initialMs'), pick('maxMs'), BACKOFF_WHY);
}

/**
 * The per-try timeout of a function (or, with `fn` undefined, of the service's own policy): it needs "timeout"
 * in retryOn, and fits in the deadline. Reported at the function only when its own entry takes part.
 */
function perTryProblems(spec: FunctionServiceSpec, fn: FunctionSpec | undefined): SpecProblem[] {
  const at = fn ? `spec.functions[${fn.name}]` : 'spec';
  const policy = resolveRetryPolicy(spec, fn);
  const perTry = policy.perTryTimeoutMs;
  if (perTry === undefined) return [];
  const out: SpecProblem[] = [];
  const ownPerTry = fn === undefined || fn.retry?.perTryTimeoutMs !== undefined;
  const inherited = `perTryTimeoutMs, ${perTry} (spec.retry.perTryTimeoutMs)`;

  // An attempt cut at its per-try timeout may have run: only "timeout" in retryOn lets the gateway retry it.
  if ((ownPerTry || fn?.retry?.retryOn !== undefined) && !policy.retryOn.includes('timeout')) {
    const fix = `add "timeout" to retryOn${fn ? ' (or set idempotent: true and leave retryOn out)' : ''}, or remove perTryTimeoutMs`;
    const why = `an attempt cut at its per-try timeout may have run, so without "timeout" it fails the call instead of being retried; ${fix}`;
    if (ownPerTry) {
      const retryOnFrom =
        fn?.retry?.retryOn !== undefined
          ? `${at}.retry.retryOn`
          : spec.retry?.retryOn !== undefined
            ? 'spec.retry.retryOn'
            : undefined;
      const given = retryOnFrom
        ? `retryOn is ${JSON.stringify(policy.retryOn)} (${retryOnFrom})`
        : 'no retryOn is given';
      out.push({ path: `${at}.retry.perTryTimeoutMs`, message: `needs "timeout" in retryOn, and ${given}: ${why}` });
    } else {
      out.push({
        path: `${at}.retry.retryOn`,
        message: `${JSON.stringify(policy.retryOn)} has no "timeout", and the function has ${inherited}: ${why}`,
      });
    }
  }

  // One attempt cannot run longer than the call's deadline.
  const timeout = fn?.timeoutMs ?? spec.timeoutMs;
  const timeoutFrom = fn?.timeoutMs !== undefined ? `${at}.timeoutMs` : 'spec.timeoutMs';
  const outlast = "one attempt cannot outlast the call's deadline";
  if ((ownPerTry || fn?.timeoutMs !== undefined) && perTry > timeout) {
    out.push(
      ownPerTry
        ? {
            path: `${at}.retry.perTryTimeoutMs`,
            message:
              `${perTry} is more than the ${fn ? "function's" : "service's"} timeoutMs, ${timeout} (${timeoutFrom}); ` +
              `make perTryTimeoutMs at most timeoutMs (${outlast})`,
          }
        : {
            path: `${at}.timeoutMs`,
            message:
              `${timeout} is less than the function's ${inherited}; make timeoutMs at least perTryTimeoutMs, or give ` +
              `the function a smaller perTryTimeoutMs of its own (${outlast})`,
          },
    );
  }
  return out;
}

/** Every problem of the spec's failure settings; empty when there is none. */
export function failureSettingsProblems(spec: FunctionServiceSpec): SpecProblem[] {
  const out: SpecProblem[] = [];
  out.push(...backoffProblems('spec.retry', spec.retry, undefined));
  out.push(...perTryProblems(spec, undefined));
  for (const fn of spec.functions) {
    out.push(...backoffProblems(`spec.functions[${fn.name}].retry`, fn.retry, spec.retry));
    out.push(...perTryProblems(spec, fn));
  }
  const od = spec.outlierDetection;
  if (od) {
    const pick = (field: 'baseEjectionMs' | 'maxEjectionMs'): Sourced =>
      od[field] !== undefined ? { value: od[field] } : { value: DEFAULT_OUTLIER_DETECTION[field], from: 'the default' };
    out.push(
      ...ordered(
        'spec.outlierDetection',
        'baseEjectionMs',
        'maxEjectionMs',
        { ...od },
        pick('baseEjectionMs'),
        pick('maxEjectionMs'),
        'each ejection in a row doubles from baseEjectionMs up to maxEjectionMs',
      ),
    );
  }
  const cb = spec.circuitBreaker;
  if (cb) {
    const pick = (field: 'openMs' | 'maxOpenMs'): Sourced =>
      cb[field] !== undefined ? { value: cb[field] } : { value: DEFAULT_CIRCUIT_BREAKER[field], from: 'the default' };
    out.push(
      ...ordered(
        'spec.circuitBreaker',
        'openMs',
        'maxOpenMs',
        { ...cb },
        pick('openMs'),
        pick('maxOpenMs'),
        'each reopening after a failed probe doubles from openMs up to maxOpenMs',
      ),
    );
  }
  return out;
}
