/**
 * Steady load through a gateway's HTTP port for the fault suites: `workers` callers, each calling one function
 * back to back with its own request id per call (x-request-id, which the function sees as x-fnmesh-request-id),
 * recording what the caller saw: the status, the attempts the gateway reports (fnmesh-attempts, 1 when absent),
 * the answering process and the error. Read `results` while it runs; `stop()` waits for the calls in flight.
 */
import { ATTEMPTS_HTTP_HEADER } from '../../common/protocol';
import { readExecutionsOf, unanswered, type CallSeen } from '../fixtures/execution-log';
import { waitFor } from './wait';

export interface CallRecord extends CallSeen {
  /** Attempts the gateway made (its fnmesh-attempts header; 1 when absent). */
  attempts: number;
  /** The function process that answered (200 only). */
  pid?: number;
  error?: string;
  retryAfter?: string;
  /** performance.now() when the call was sent and answered (for ordering, not for timing assertions). */
  sentAt: number;
  answeredAt: number;
}

let sequence = 0;
const RUN = process.pid.toString(36);

/** A request id unique in this test process (the gateway keeps sane ids as they are). */
export function nextRequestId(prefix: string): string {
  return `${prefix}-${RUN}-${(++sequence).toString(36)}`;
}

/** One call through the gateway with its own request id; never throws (a transport error is status 0). */
export async function callWithId(
  gatewayUrl: string,
  route: string,
  body: { params?: unknown; timeout?: number },
  requestId: string,
): Promise<CallRecord> {
  const sentAt = performance.now();
  try {
    const res = await fetch(`${gatewayUrl}/v1/api/${route}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify({ params: null, ...body }),
    });
    const text = await res.text();
    const r: CallRecord = {
      requestId,
      status: res.status,
      attempts: Number(res.headers.get(ATTEMPTS_HTTP_HEADER) ?? 1),
      sentAt,
      answeredAt: performance.now(),
    };
    const retryAfter = res.headers.get('retry-after');
    if (retryAfter !== null) r.retryAfter = retryAfter;
    let parsed: { result?: { pid?: number }; error?: string } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      r.error = `(not JSON) ${text.slice(0, 200)}`;
    }
    if (res.status === 200 && typeof parsed.result?.pid === 'number') r.pid = parsed.result.pid;
    if (parsed.error !== undefined) r.error = parsed.error;
    return r;
  } catch (err) {
    return { requestId, status: 0, attempts: 0, error: String(err), sentAt, answeredAt: performance.now() };
  }
}

export interface SteadyLoad {
  results: CallRecord[];
  /** Calls answered 200 by `pid`. */
  answeredBy(pid: number): number;
  stop(): Promise<CallRecord[]>;
}

export function steadyLoad(options: {
  gatewayUrl: string;
  /** `{namespace}/functions/{service}/{function}` */
  route: string;
  workers: number;
  timeoutMs: number;
  params?: unknown;
  idPrefix: string;
}): SteadyLoad {
  const results: CallRecord[] = [];
  let running = true;
  const loops = Array.from({ length: options.workers }, async () => {
    while (running) {
      const r = await callWithId(
        options.gatewayUrl,
        options.route,
        { params: options.params ?? null, timeout: options.timeoutMs },
        nextRequestId(options.idPrefix),
      );
      results.push(r);
      // a transport error would spin: give the event loop a turn
      if (r.status === 0) await new Promise((res) => setTimeout(res, 10));
    }
  });
  let stopped: Promise<CallRecord[]> | undefined;
  return {
    results,
    answeredBy: (pid) => results.reduce((n, r) => n + (r.pid === pid ? 1 : 0), 0),
    stop: () =>
      (stopped ??= (async () => {
        running = false;
        await Promise.all(loops);
        return results;
      })()),
  };
}

/**
 * SIGKILLs the fixture process `pid` at a moment it is running at least one call (read from its log, then the
 * kill in the same turn of the event loop, so the call cannot finish in between). Resolves with the moment, on
 * the clock of `CallRecord.sentAt`.
 */
export async function killWhileRunning(logDir: string, pid: number): Promise<number> {
  return waitFor(
    () => {
      if (unanswered(readExecutionsOf(logDir, pid), pid).length === 0) return undefined;
      const at = performance.now();
      process.kill(pid, 'SIGKILL');
      return at;
    },
    { intervalMs: 1, what: `a call running at process ${pid} to kill it under` },
  );
}
