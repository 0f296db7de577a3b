/**
 * CPU time per call, per process: on a noisy machine requests per second wobble with whatever else runs,
 * CPU microseconds per call do much less. Starts the SDK echo function, the gateway (embedded broker) and a
 * sidecar; then, per round, a closed loop of CONCURRENCY HTTP calls straight to the function (direct) and
 * through the gateway (mesh), reading each process's utime+stime from /proc/<pid>/stat before and after.
 * Prints every round and the medians.
 *
 *   npx tsc -p tsconfig.build.json && node dist/bench/cpu-per-call.js
 *
 * Env: BENCH_SECONDS (8), BENCH_CONCURRENCY (64), BENCH_ROUNDS (3), BENCH_LABEL (a name for the variant),
 * BENCH_PROFILE_DIR (run the gateway and the sidecar with --cpu-prof, profiles written there at exit).
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { closedLoop, httpSender, type Send } from './load';
import type { Proc } from './procs';
import { ECHO_CALL_PATH, startEchoMesh } from './echo-mesh';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LABEL = process.env.BENCH_LABEL ?? 'current';
const payload = JSON.stringify({ message: 'hello', n: 42 });
const PROFILE = process.env.BENCH_PROFILE_DIR
  ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE_DIR)}`]
  : [];
const TICK_US = 1e6 / 100; // USER_HZ is 100 on Linux

/** utime + stime of a process in microseconds. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the ")" of comm: state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * TICK_US;
}
function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

interface Sample {
  rate: number;
  errors: number;
  /** µs of CPU per call, by process name; `load` is this process. */
  perCall: Record<string, number>;
}

async function measure(send: Send, procs: Proc[]): Promise<Sample> {
  const before = procs.map((p) => cpuUs(p.child.pid!));
  const selfBefore = selfCpuUs();
  const t0 = performance.now();
  let calls = 0;
  const counted: Send = async () => {
    await send();
    calls++;
  };
  const r = await closedLoop(counted, CONCURRENCY, SECONDS * 1000);
  void t0;
  const perCall: Record<string, number> = {};
  procs.forEach((p, i) => (perCall[p.name] = (cpuUs(p.child.pid!) - before[i]!) / calls));
  perCall.load = (selfCpuUs() - selfBefore) / calls;
  return { rate: r.rate, errors: r.errors, perCall };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const f = (n: number | undefined, d = 1): string => (n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));

async function main(): Promise<void> {
  const sut = await startEchoMesh({ nodeFlags: PROFILE });
  try {
    const { fn, gateway, sidecar, fnPort, gatewayPort: gwPort } = sut;
    const directPool = new Pool(`http://127.0.0.1:${fnPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const meshPool = new Pool(`http://127.0.0.1:${gwPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const direct = httpSender(directPool, '/echo', payload);
    const mesh = httpSender(meshPool, ECHO_CALL_PATH, `{"params":${payload}}`);
    await mesh();
    await closedLoop(direct, CONCURRENCY, 1500);
    await closedLoop(mesh, CONCURRENCY, 3000);

    const directRuns: Sample[] = [];
    const meshRuns: Sample[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const d = await measure(direct, [fn]);
      directRuns.push(d);
      const m = await measure(mesh, [gateway, sidecar, fn]);
      meshRuns.push(m);
      console.log(
        `round ${i + 1}: direct ${f(d.rate, 0)}/s fn ${f(d.perCall.function)} load ${f(d.perCall.load)} µs | mesh ${f(m.rate, 0)}/s ` +
          `gw ${f(m.perCall.gateway)} sc ${f(m.perCall.sidecar)} fn ${f(m.perCall.function)} load ${f(m.perCall.load)} µs` +
          (d.errors + m.errors ? ` errors ${d.errors + m.errors}` : ''),
      );
    }
    await directPool.close();
    await meshPool.close();

    const med = (runs: Sample[], key: string): number => median(runs.map((r) => r.perCall[key] ?? NaN));
    const dRate = median(directRuns.map((r) => r.rate));
    const mRate = median(meshRuns.map((r) => r.rate));
    const dCpu = med(directRuns, 'function') + med(directRuns, 'load');
    const mCpu =
      med(meshRuns, 'gateway') + med(meshRuns, 'sidecar') + med(meshRuns, 'function') + med(meshRuns, 'load');
    console.log('');
    console.log(
      `${LABEL} — medians of ${ROUNDS} rounds, ${SECONDS} s each, ${CONCURRENCY} concurrent, ${os.cpus().length} cores, node ${process.version}`,
    );
    console.log(
      '| path | calls/s | gateway µs | sidecar µs | function µs | load µs | total µs/call | ratio calls/s | ratio by CPU |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| direct | ${f(dRate, 0)} | - | - | ${f(med(directRuns, 'function'))} | ${f(med(directRuns, 'load'))} | ${f(dCpu)} | 1.00 | 1.00 |`,
    );
    console.log(
      `| mesh | ${f(mRate, 0)} | ${f(med(meshRuns, 'gateway'))} | ${f(med(meshRuns, 'sidecar'))} | ${f(med(meshRuns, 'function'))} | ${f(med(meshRuns, 'load'))} | ${f(mCpu)} | ${f(mRate / dRate, 2)} | ${f(dCpu / mCpu, 2)} |`,
    );
  } finally {
    await sut.stop();
  }
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
