/**
 * The CRD's failure settings (spec.queueLength's neighbours: retry, idempotent, outlierDetection,
 * circuitBreaker): their descriptions, with the defaults of common/resilience.ts, and the CEL rules that check
 * what spans fields. common/failure-settings-checks.ts makes the same checks for `fnmesh validate` and
 * `fnmesh local`; test/helpers/refused-manifests.ts holds the manifests both must refuse.
 *
 * A function's retry is the service's retry with the function's own over it, field by field, so the rules
 * that span the two sit on the spec (they iterate spec.functions, at most MAX_FUNCTIONS, each step a few
 * field reads: cheap next to the rule schema's cost). Absent fields read through CEL optionals
 * (`f.?retry.?perTryTimeoutMs`), which every API server that runs native sidecars (1.29+) has.
 */
import {
  circuitBreakerSchema as zodCircuitBreaker,
  outlierDetectionSchema as zodOutlierDetection,
  retrySchema as zodRetry,
} from '../common/manifest';
import {
  DEFAULT_CIRCUIT_BREAKER,
  DEFAULT_OUTLIER_DETECTION,
  DEFAULT_RETRY,
  IDEMPOTENT_RETRY_ON,
  RETRY_CONDITIONS,
} from '../common/resilience';
import { INT32, fromZod, type Schema, type Validation } from './openapi';

/** A text as the inside of a CEL string literal in single quotes. */
const inCel = (text: string): string => text.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
const list = (values: readonly unknown[]): string => `[${values.map((v) => JSON.stringify(v)).join(', ')}]`;
const cel = (values: readonly string[]): string => `[${values.map((v) => `'${v}'`).join(', ')}]`;

const RETRY_ON_HELP = `"${RETRY_CONDITIONS.join('", "')}" or one status from 500 to 599`;

/** `retry` of the service (`level: 'service'`) or of one function. */
export function retrySchema(level: 'service' | 'function'): Schema {
  const r = zodRetry.shape;
  const backoff = r.backoff.unwrap().shape;
  const d = DEFAULT_RETRY;
  const inherit = (field: string, dflt: string): string =>
    level === 'service' ? `Default: ${dflt}.` : `Default: spec.retry.${field}, else ${dflt}.`;
  const schema: Schema = {
    type: 'object',
    description:
      level === 'service'
        ? "The default retry policy of the service's functions (a function's own retry overrides it field by field). " +
          "A call that never reached the function (its port refused the connection, the replica's queue was full, it was " +
          "draining or ejected, or its function unhealthy) is always retried on another replica, within the call's one " +
          'deadline, with no configuration; this policy bounds those attempts and opts in to retrying calls that may ' +
          `have run (retryOn). Default: {attempts: ${d.attempts}, backoff: {initialMs: ${d.backoff.initialMs}, maxMs: ` +
          `${d.backoff.maxMs}}, retryOn: []}: at-most-once.`
        : "This function's retry policy, over the service's retry field by field. Example: {retryOn: [reset, 503], perTryTimeoutMs: 2000, attempts: 3}.",
    properties: {
      attempts: fromZod(
        r.attempts,
        `Attempts in all, the first one included (1: never retried); never past the call's deadline. ${inherit('attempts', String(d.attempts))}`,
        INT32,
      ),
      backoff: {
        type: 'object',
        description:
          'Exponential back-off between attempts with full jitter: the n-th wait is drawn in [0, min(maxMs, initialMs·2ⁿ⁻¹)]. ' +
          'initialMs must be at most maxMs.',
        properties: {
          initialMs: fromZod(
            backoff.initialMs,
            `The bound of the first wait, milliseconds. ${inherit('backoff.initialMs', String(d.backoff.initialMs))}`,
            INT32,
          ),
          maxMs: fromZod(
            backoff.maxMs,
            `The bound of every wait, milliseconds. ${inherit('backoff.maxMs', String(d.backoff.maxMs))}`,
            INT32,
          ),
        },
      },
      retryOn: {
        type: 'array',
        description:
          'Failures of calls that may have run that are retried (calls that never reached the function always are): ' +
          '"reset" (the connection to the function closed after it read the request, before its answer was complete), ' +
          '"timeout" (an attempt\'s perTryTimeoutMs passed; the call\'s own deadline is never retried past), "5xx" (the ' +
          'function answered a status from 500 to 599), or one such status (only that one). ' +
          (level === 'service'
            ? `Default: [] (at-most-once); a function with idempotent: true and no retryOn gets ${list(IDEMPOTENT_RETRY_ON)}.`
            : `Default: spec.retry.retryOn, else ${list(IDEMPOTENT_RETRY_ON)} with idempotent: true, else [].`) +
          ' Example: [reset, 503].',
        maxItems: 16,
        items: {
          description: `One failure: ${RETRY_ON_HELP}.`,
          'x-kubernetes-int-or-string': true,
          // bounds the CEL cost of the rules that look for "timeout" in the list (longer than any condition, so that
          // a mistyped one gets the message of the rule below)
          maxLength: 16,
          anyOf: [{ type: 'integer' }, { type: 'string' }],
          'x-kubernetes-validations': [
            {
              rule: `type(self) == string ? self in ${cel(RETRY_CONDITIONS)} : (self >= 500 && self <= 599)`,
              message: `must be ${RETRY_ON_HELP}`,
            },
          ],
        },
      },
      perTryTimeoutMs: fromZod(
        r.perTryTimeoutMs,
        'The budget of one attempt, milliseconds; the rest of the deadline when not set. Needs "timeout" in retryOn (an ' +
          'attempt cut at its per-try timeout may have run, and would otherwise fail the call), and is at most the ' +
          `function's timeoutMs. ${level === 'service' ? 'Default: none.' : 'Default: spec.retry.perTryTimeoutMs, else none.'}`,
        INT32,
      ),
    },
  };
  if (level === 'service') {
    schema.properties!.backoff!['x-kubernetes-validations'] = [
      ordered('initialMs', 'maxMs', d.backoff.initialMs, d.backoff.maxMs, BACKOFF_WHY),
    ];
    schema['x-kubernetes-validations'] = [
      {
        rule: `!has(self.perTryTimeoutMs) || (has(self.retryOn) && 'timeout' in self.retryOn)`,
        message: `needs "timeout" in retryOn: ${PER_TRY_WHY}; add "timeout" to retryOn, or remove perTryTimeoutMs`,
        fieldPath: '.perTryTimeoutMs',
      },
    ];
  }
  return schema;
}

const BACKOFF_WHY = 'each wait between attempts doubles from initialMs up to maxMs';
const OUTLAST = "one attempt cannot outlast the call's deadline";
const PER_TRY_WHY =
  'an attempt cut at its per-try timeout may have run, so without "timeout" it fails the call instead of being retried';

/** `self.<low> <= self.<high>` of one object, each field read with its default when absent. */
function ordered(low: string, high: string, lowDefault: number, highDefault: number, why: string): Validation {
  const l = `self.?${low}.orValue(${lowDefault})`;
  const h = `self.?${high}.orValue(${highDefault})`;
  return {
    rule: `${l} <= ${h}`,
    // A static message: the API server's cost estimate of string(<int>) is unbounded.
    message: `must be at most ${high} (when not set: ${low} ${lowDefault}, ${high} ${highDefault}); make ${low} at most ${high} (${why})`,
    fieldPath: `.${low}`,
  };
}

export function outlierDetectionSchema(): Schema {
  const o = zodOutlierDetection.shape;
  const d = DEFAULT_OUTLIER_DETECTION;
  return {
    type: 'object',
    description:
      'Outlier detection of each replica, done by its sidecar: a replica whose function keeps failing leaves its queue ' +
      'group (is ejected) for a back-off period, and the other replicas carry the calls. A failure is an answer of the ' +
      'function with a 5xx, a call that ran past its deadline, or a connection to the function that broke. A replica ' +
      'whose function is down or fails its health check leaves at once, whatever this says. Defaults: ' +
      `{consecutiveFailures: ${d.consecutiveFailures}, failureRatio: ${d.failureRatio}, minCalls: ${d.minCalls}, ` +
      `windowMs: ${d.windowMs}, baseEjectionMs: ${d.baseEjectionMs}, maxEjectionMs: ${d.maxEjectionMs}, ` +
      `maxEjectionPercent: ${d.maxEjectionPercent}}.`,
    properties: {
      consecutiveFailures: fromZod(
        o.consecutiveFailures,
        `Failures in a row that eject the replica (0: off). Default: ${d.consecutiveFailures}.`,
        INT32,
      ),
      failureRatio: fromZod(
        o.failureRatio,
        `The share of failed calls in the window (0 to 1) that ejects the replica (0: off). Default: ${d.failureRatio}.`,
      ),
      minCalls: fromZod(
        o.minCalls,
        `Calls in the window before failureRatio is judged. Default: ${d.minCalls}.`,
        INT32,
      ),
      windowMs: fromZod(
        o.windowMs,
        `The window failureRatio is judged over, milliseconds. Default: ${d.windowMs}.`,
        INT32,
      ),
      baseEjectionMs: fromZod(
        o.baseEjectionMs,
        `How long the first ejection lasts, milliseconds; each next one in a row doubles, up to maxEjectionMs. Default: ${d.baseEjectionMs}.`,
        INT32,
      ),
      maxEjectionMs: fromZod(
        o.maxEjectionMs,
        `The longest ejection, milliseconds; at least baseEjectionMs. Default: ${d.maxEjectionMs}.`,
        INT32,
      ),
      maxEjectionPercent: fromZod(
        o.maxEjectionPercent,
        "The most of the service's replicas (in percent, as the replicas report it) that ejection takes out of " +
          'rotation at once, so that calls that fail only for some inputs cannot take the whole service down. A replica ' +
          `whose function is down or unhealthy leaves whatever this says. Default: ${d.maxEjectionPercent}.`,
        INT32,
      ),
    },
    'x-kubernetes-validations': [
      ordered(
        'baseEjectionMs',
        'maxEjectionMs',
        d.baseEjectionMs,
        d.maxEjectionMs,
        'each ejection in a row doubles from baseEjectionMs up to maxEjectionMs',
      ),
    ],
  };
}

export function circuitBreakerSchema(): Schema {
  const c = zodCircuitBreaker.shape;
  const d = DEFAULT_CIRCUIT_BREAKER;
  return {
    type: 'object',
    description:
      'The circuit breaker of each function of the service, in the gateway: after consecutiveFailures calls in a row ' +
      'that no replica could take (every attempt not executed, or no replica subscribed), calls of the function are ' +
      'answered 503 at once for openMs, instead of piling onto a dead service; then one call probes, and each reopening ' +
      'after a failed probe doubles the time, up to maxOpenMs. Only such calls count: a caller cannot open it with short ' +
      `timeouts or bad params. Defaults: {consecutiveFailures: ${d.consecutiveFailures}, openMs: ${d.openMs}, maxOpenMs: ${d.maxOpenMs}}.`,
    properties: {
      consecutiveFailures: fromZod(
        c.consecutiveFailures,
        `Calls in a row that no replica could take that open the circuit (0: off). Default: ${d.consecutiveFailures}.`,
        INT32,
      ),
      openMs: fromZod(c.openMs, `How long the circuit stays open first, milliseconds. Default: ${d.openMs}.`, INT32),
      maxOpenMs: fromZod(
        c.maxOpenMs,
        `The longest the circuit stays open, milliseconds; at least openMs. Default: ${d.maxOpenMs}.`,
        INT32,
      ),
    },
    'x-kubernetes-validations': [
      ordered(
        'openMs',
        'maxOpenMs',
        d.openMs,
        d.maxOpenMs,
        'each reopening after a failed probe doubles from openMs up to maxOpenMs',
      ),
    ],
  };
}

// ------------------------------------------------------------------------------------ rules on the spec

/** CEL over one function `f` of the spec `self`, resolved as common/resilience.ts's resolveRetryPolicy does. */
const perTry = 'f.?retry.?perTryTimeoutMs.or(self.?retry.?perTryTimeoutMs)';
const retriesTimeouts =
  "(f.?retry.?retryOn.hasValue() ? 'timeout' in f.retry.retryOn : " +
  "self.?retry.?retryOn.hasValue() ? 'timeout' in self.retry.retryOn : " +
  `${IDEMPOTENT_RETRY_ON.includes('timeout') ? 'f.?idempotent.orValue(false)' : 'false'})`;
const backoffOf = (field: 'initialMs' | 'maxMs'): string =>
  `f.retry.backoff.?${field}.orValue(self.?retry.?backoff.?${field}.orValue(${DEFAULT_RETRY.backoff[field]}))`;

/**
 * A rule over every function: `ok` must hold for each whose own entry `takesPart`. Its message names the first
 * function that fails; it is built by map-then-filter, as the API server's cost estimate refuses filter-then-map
 * (and join) over this many functions.
 */
function forEachFunction(takesPart: string, ok: string, message: string, explain: string): Validation {
  const each = `!(${takesPart}) || (${ok})`;
  return {
    rule: `self.functions.all(f, ${each})`,
    message: `a function's ${message}${explain}`,
    messageExpression: `self.functions.map(f, (${each}) ? '' : 'spec.functions[' + f.name + ']: ${inCel(message + explain)}').filter(m, m != '')[0]`,
    fieldPath: '.functions',
  };
}

/** The rules on the spec that span the service's retry and its functions'. */
export function specFailureValidations(): Validation[] {
  return [
    {
      rule: '!has(self.retry) || !has(self.retry.perTryTimeoutMs) || self.retry.perTryTimeoutMs <= self.timeoutMs',
      message: `must be at most the service's timeoutMs; make perTryTimeoutMs at most timeoutMs (${OUTLAST})`,
      fieldPath: '.retry.perTryTimeoutMs',
    },
    forEachFunction(
      'f.?retry.?perTryTimeoutMs.hasValue() || f.?retry.?retryOn.hasValue()',
      `!${perTry}.hasValue() || ${retriesTimeouts}`,
      `retry.perTryTimeoutMs (its own or spec.retry's) needs "timeout" in retryOn (its own, else spec.retry's)`,
      `: ${PER_TRY_WHY}; add "timeout" to retryOn (or set idempotent: true and leave retryOn out), or remove perTryTimeoutMs`,
    ),
    forEachFunction(
      'f.?retry.?perTryTimeoutMs.hasValue() || has(f.timeoutMs)',
      `!${perTry}.hasValue() || ${perTry}.value() <= f.?timeoutMs.orValue(self.timeoutMs)`,
      "retry.perTryTimeoutMs (its own or spec.retry's) is more than its timeoutMs (its own, else spec.timeoutMs)",
      `; make perTryTimeoutMs at most timeoutMs (${OUTLAST})`,
    ),
    forEachFunction(
      'f.?retry.?backoff.?initialMs.hasValue() || f.?retry.?backoff.?maxMs.hasValue()',
      `${backoffOf('initialMs')} <= ${backoffOf('maxMs')}`,
      "retry.backoff.initialMs is more than its backoff.maxMs (each its own, else spec.retry.backoff's, else " +
        `the defaults ${DEFAULT_RETRY.backoff.initialMs} and ${DEFAULT_RETRY.backoff.maxMs})`,
      `; make initialMs at most maxMs (${BACKOFF_WHY})`,
    ),
  ];
}
