import {
  DEFAULT_RETRY,
  IDEMPOTENT_RETRY_ON,
  isNotExecutedReason,
  resolveCircuitBreaker,
  resolveOutlierDetection,
  resolveRetryPolicy,
  retriesStatus,
} from './resilience';

describe('resolveRetryPolicy', () => {
  it('retries only calls that never ran when nothing is configured (at-most-once)', () => {
    expect(resolveRetryPolicy({}, undefined)).toEqual({ ...DEFAULT_RETRY, retryOn: [] });
    expect(resolveRetryPolicy({}, { idempotent: false })).toEqual({ ...DEFAULT_RETRY, retryOn: [] });
  });

  it('lets the function override the service field by field, and idempotent fill retryOn', () => {
    const policy = resolveRetryPolicy(
      { retry: { attempts: 2, backoff: { maxMs: 100 }, perTryTimeoutMs: 500 } },
      { idempotent: true, retry: { backoff: { initialMs: 5 } } },
    );
    expect(policy).toEqual({
      attempts: 2,
      backoff: { initialMs: 5, maxMs: 100 },
      retryOn: IDEMPOTENT_RETRY_ON,
      perTryTimeoutMs: 500,
    });
  });

  it('takes an explicit retryOn over idempotent', () => {
    expect(resolveRetryPolicy({ retry: { retryOn: [503] } }, { idempotent: true }).retryOn).toEqual([503]);
    expect(resolveRetryPolicy({ retry: { retryOn: [503] } }, { retry: { retryOn: [] } }).retryOn).toEqual([]);
  });
});

describe('retriesStatus', () => {
  it('matches 5xx as a family and single statuses exactly', () => {
    expect(retriesStatus({ retryOn: ['5xx'] }, 500)).toBe(true);
    expect(retriesStatus({ retryOn: ['5xx'] }, 599)).toBe(true);
    expect(retriesStatus({ retryOn: ['5xx'] }, 429)).toBe(false);
    expect(retriesStatus({ retryOn: [503] }, 503)).toBe(true);
    expect(retriesStatus({ retryOn: [503] }, 500)).toBe(false);
    expect(retriesStatus({ retryOn: ['reset', 'timeout'] }, 500)).toBe(false);
  });
});

describe('defaults', () => {
  it('fills what a manifest leaves out', () => {
    expect(resolveOutlierDetection({ consecutiveFailures: 0 }).consecutiveFailures).toBe(0);
    expect(resolveOutlierDetection(undefined).maxEjectionPercent).toBe(50);
    expect(resolveCircuitBreaker({ openMs: 10 }).maxOpenMs).toBe(5_000);
  });

  it('knows the not-executed reasons', () => {
    expect(isNotExecutedReason('function-down')).toBe(true);
    expect(isNotExecutedReason('maybe')).toBe(false);
  });
});
