/**
 * Load generators for the benchmarks: open-loop at a fixed rate (latency measured from each request's
 * intended start, so a stall is not hidden by coordinated omission) and closed-loop for maximum throughput.
 */
import { performance } from 'node:perf_hooks';
import type { Pool } from 'undici';

export type Send = () => Promise<void>;

export interface LatencySummary {
  count: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  /** achieved rate, requests per second */
  rate: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx]!;
}

/** Sends `rate` requests per second for `durationMs`, without waiting for answers before the next send. */
export async function openLoop(send: Send, rate: number, durationMs: number): Promise<LatencySummary> {
  const total = Math.round((rate * durationMs) / 1000);
  const intervalMs = 1000 / rate;
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (i < total && start + i * intervalMs <= now) {
        const intended = start + i * intervalMs;
        i++;
        pending.push(
          send().then(
            () => void latencies.push(performance.now() - intended),
            () => void errors++,
          ),
        );
      }
      if (i >= total) resolve();
      // a timer, not setImmediate: a busy loop would steal a core from the system under test
      else setTimeout(tick, Math.max(0, start + i * intervalMs - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  const elapsed = performance.now() - start;
  latencies.sort((a, b) => a - b);
  return {
    count: latencies.length,
    errors,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    rate: (latencies.length * 1000) / elapsed,
  };
}

/** `concurrency` workers send back to back for `durationMs`; returns completed requests per second. */
export async function closedLoop(
  send: Send,
  concurrency: number,
  durationMs: number,
): Promise<{ rate: number; errors: number }> {
  let done = 0;
  let errors = 0;
  const end = performance.now() + durationMs;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        await send();
        done++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { rate: (done * 1000) / (performance.now() - start), errors };
}

/** One JSON POST of `body` to `urlPath` on the pool; a status other than 200 is a failed call. */
export function httpSender(pool: Pool, urlPath: string, body: string): Send {
  return async () => {
    const res = await pool.request({
      path: urlPath,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
  };
}
