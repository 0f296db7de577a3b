/**
 * `npm run bench:mesh-auth`: the mesh path (HTTP → gateway → embedded broker → sidecar → echo function) with
 * every part its own NATS user and the broker checking JWTs and permissions (as `fnmesh local` runs it)
 * against no NATS auth. Rounds alternate (off, on, on, off, ...) on fresh meshes, since this machine is noisy;
 * prints the median per mode of p50/p99 at a fixed rate and of the closed-loop throughput, and the change.
 */
import { Pool } from 'undici';
import { openLoop, closedLoop, type Send } from './load';
import { ECHO_CALL_PATH, startEchoMesh } from './echo-mesh';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const RATE = Number(process.env.BENCH_RATE ?? 500);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 4) * 1000;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 3) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const body = JSON.stringify({ params: { message: 'hello', n: 42 } });

interface Round {
  p50: number;
  p99: number;
  rate: number;
  errors: number;
}

async function round(auth: boolean): Promise<Round> {
  const mesh = await startEchoMesh({ auth });
  const pool = new Pool(`http://127.0.0.1:${mesh.gatewayPort}`, { connections: CONCURRENCY, pipelining: 1 });
  try {
    const send: Send = async () => {
      const res = await pool.request({
        path: ECHO_CALL_PATH,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    };
    await send();
    await closedLoop(send, 16, 1000);
    const latency = await openLoop(send, RATE, LATENCY_MS);
    const throughput = await closedLoop(send, CONCURRENCY, THROUGHPUT_MS);
    return { p50: latency.p50, p99: latency.p99, rate: throughput.rate, errors: latency.errors + throughput.errors };
  } finally {
    await pool.close();
    await mesh.stop();
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const results: Record<'off' | 'on', Round[]> = { off: [], on: [] };
  for (let i = 0; i < ROUNDS; i++) {
    // off, on | on, off | ...: neither mode always runs first
    const order: Array<'off' | 'on'> = i % 2 === 0 ? ['off', 'on'] : ['on', 'off'];
    for (const mode of order) {
      const r = await round(mode === 'on');
      results[mode].push(r);
      console.error(
        `round ${i + 1} ${mode}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.rate.toFixed(0)} req/s, ${r.errors} errors`,
      );
    }
  }
  const sum = (mode: 'off' | 'on'): Round => ({
    p50: median(results[mode].map((r) => r.p50)),
    p99: median(results[mode].map((r) => r.p99)),
    rate: median(results[mode].map((r) => r.rate)),
    errors: results[mode].reduce((n, r) => n + r.errors, 0),
  });
  const off = sum('off');
  const on = sum('on');
  const pct = (a: number, b: number): string => `${(((b - a) / a) * 100).toFixed(1)}%`;
  console.log(
    [
      `mesh path, NATS auth + permissions off vs on: ${ROUNDS} alternating rounds, ${RATE} req/s for ${LATENCY_MS / 1000} s, ${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s (medians)`,
      '',
      '| mode | p50 ms | p99 ms | max req/s | errors |',
      '|---|---|---|---|---|',
      `| off | ${off.p50.toFixed(2)} | ${off.p99.toFixed(2)} | ${off.rate.toFixed(0)} | ${off.errors} |`,
      `| on | ${on.p50.toFixed(2)} | ${on.p99.toFixed(2)} | ${on.rate.toFixed(0)} | ${on.errors} |`,
      `| change | ${pct(off.p50, on.p50)} | ${pct(off.p99, on.p99)} | ${pct(off.rate, on.rate)} | |`,
      '',
      `goal (issue 11): throughput and latency no more than 5% worse: throughput ${on.rate >= off.rate * 0.95 ? 'met' : 'not met'}, p50 ${on.p50 <= off.p50 * 1.05 ? 'met' : 'not met'}`,
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
