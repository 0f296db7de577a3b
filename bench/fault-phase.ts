/**
 * The fault phase of `npm run bench`: `fnmesh local` (its supervisor, the embedded broker with NATS auth, real
 * sidecar and function processes) with one at-most-once service of two replicas running the fault fixture
 * (test/fixtures/faulty-function.ts, which logs every call it starts and answers by request id). The same
 * open-loop load twice in one run: without faults, then with one replica's function SIGKILLed every few seconds
 * (alternating, and only while the other replica is ready) and restarted by the mesh as it restarts any crash.
 * Every failed call is classified from the function's execution log: not executed (no function started it: the
 * target is none), ambiguous (a function started it and was killed), or handed to a dying function unread.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { ATTEMPTS_HTTP_HEADER } from '../common/protocol';
import { API_VERSION, KIND } from '../common/crd-names';
import {
  FAULTY_ENV,
  byRequestId,
  classifyFailures,
  readExecutions,
  type CallSeen,
} from '../test/fixtures/execution-log';
import { percentile } from './load';
import { freePort } from './procs';

const RATE = Number(process.env.BENCH_FAULT_RATE ?? 200);
const PHASE_MS = Number(process.env.BENCH_FAULT_SECONDS ?? 15) * 1000;
const KILL_EVERY_MS = Number(process.env.BENCH_FAULT_KILL_EVERY_MS ?? 3000);
const DELAY_MS = Number(process.env.BENCH_FAULT_DELAY_MS ?? 5);
const TIMEOUT_MS = 5000;
const SERVICE = 'flaky';
const CALL_PATH = `/v1/api/bench/functions/${SERVICE}/work`;

const root = path.resolve(__dirname, '..', '..');

interface Call extends CallSeen {
  /** From the intended start (open loop: a stall is not hidden), milliseconds. */
  latencyMs: number;
  attempts: number;
}

export interface FaultPhaseResult {
  name: string;
  calls: number;
  failed: number;
  notExecuted: number;
  ambiguous: number;
  unreadAtKill: number;
  retried: number;
  kills: number;
  p50: number;
  p99: number;
  max: number;
  /** One failure of each kind, for the reader who must find out why. */
  examples: string[];
}

interface LocalMesh {
  child: ChildProcess;
  lines: string[];
  gatewayPort: number;
  logDir: string;
  /** The function pid of replica `index` once it said ready after output line `from`. */
  readyPid(index: number, from?: number): number | undefined;
  stop(): Promise<void>;
}

async function startLocalMesh(): Promise<LocalMesh> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-bench-fault-'));
  const logDir = path.join(dir, 'log');
  const manifest = [
    `apiVersion: ${API_VERSION}`,
    `kind: ${KIND}`,
    `metadata: {name: ${SERVICE}, namespace: bench}`,
    'spec:',
    '  replicas: 2',
    '  local:',
    `    command: [node, ${JSON.stringify(path.join(root, 'dist', 'test', 'fixtures', 'faulty-function.js'))}]`,
    '    env:',
    `      ${FAULTY_ENV.logDir}: ${JSON.stringify(logDir)}`,
    `      ${FAULTY_ENV.controlDir}: ${JSON.stringify(path.join(dir, 'control'))}`,
    `      ${FAULTY_ENV.delayMs}: "${DELAY_MS}"`,
    '  functions:',
    '    - {name: work, rule: {rule: allow}}',
    '',
  ].join('\n');
  writeFileSync(path.join(dir, `${SERVICE}.yaml`), manifest);
  const gatewayPort = await freePort();
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FNMESH_')),
  );
  Object.assign(env, {
    FNMESH_LISTEN: `127.0.0.1:${gatewayPort}`,
    FNMESH_OPS_LISTEN: '127.0.0.1:0',
    FNMESH_BROKER_PORT: String(await freePort()),
    FNMESH_LOG_LEVEL: 'warn',
    NO_COLOR: '1',
  });
  const child = spawn(process.execPath, [path.join(root, 'bin', 'fnmesh.js'), 'local', dir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let rest = '';
  const onData = (d: Buffer): void => {
    const parts = (rest + d.toString()).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const readyPid = (index: number, from = 0): number | undefined => {
    const re = new RegExp(`\\b${SERVICE}-${index} ready \\(function pid (\\d+)`);
    for (let i = lines.length - 1; i >= from; i--) {
      const m = re.exec(lines[i]!);
      if (m) return Number(m[1]);
    }
    return undefined;
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const started = Date.now();
  while (readyPid(0) === undefined || readyPid(1) === undefined) {
    if (child.exitCode !== null || Date.now() - started > 60_000) {
      await stop();
      throw new Error(`fnmesh local did not get both replicas ready:\n${lines.slice(-30).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, lines, gatewayPort, logDir, readyPid, stop };
}

/** The open loop of one phase; every call has its own request id. */
async function load(pool: Pool, phase: string, onTick: () => void, durationMs = PHASE_MS): Promise<Call[]> {
  const total = Math.round((RATE * durationMs) / 1000);
  const intervalMs = 1000 / RATE;
  const calls: Call[] = [];
  const pending: Promise<void>[] = [];
  const body = JSON.stringify({ params: null, timeout: TIMEOUT_MS });
  const start = performance.now();
  let i = 0;
  const one = async (n: number, intended: number): Promise<void> => {
    const requestId = `bench-${phase}-${n}`;
    const sentAt = performance.now();
    let status = 0;
    let attempts = 0;
    let error: string | undefined;
    try {
      const res = await pool.request({
        path: CALL_PATH,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-request-id': requestId },
        body,
      });
      status = res.statusCode;
      attempts = Number(res.headers[ATTEMPTS_HTTP_HEADER] ?? 1);
      const text = await res.body.text();
      if (status !== 200) error = text.slice(0, 300);
    } catch (err) {
      error = String(err);
    }
    const answeredAt = performance.now();
    calls.push({ requestId, status, attempts, sentAt, answeredAt, latencyMs: answeredAt - intended, error });
  };
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (i < total && start + i * intervalMs <= now) {
        pending.push(one(i, start + i * intervalMs));
        i++;
      }
      onTick();
      if (i >= total) resolve();
      else setTimeout(tick, Math.max(0, start + i * intervalMs - performance.now()));
    };
    tick();
  });
  await Promise.all(pending);
  return calls;
}

function summarize(name: string, calls: Call[], logDir: string, kills: number[]): FaultPhaseResult {
  const failed = classifyFailures(calls, byRequestId(readExecutions(logDir)), kills);
  const ok = calls
    .filter((c) => c.status === 200)
    .map((c) => c.latencyMs)
    .sort((a, b) => a - b);
  const example = (kind: string, list: Call[]): string[] =>
    list.length ? [`${kind}: ${list[0]!.status} ${list[0]!.error ?? ''}`.trim()] : [];
  return {
    name,
    calls: calls.length,
    failed: calls.filter((c) => c.status !== 200).length,
    notExecuted: failed.notExecuted.length,
    ambiguous: failed.ambiguous.length,
    unreadAtKill: failed.unreadAtKill.length,
    retried: calls.filter((c) => c.attempts > 1).length,
    kills: kills.length,
    p50: percentile(ok, 50),
    p99: percentile(ok, 99),
    max: ok[ok.length - 1] ?? NaN,
    examples: [
      ...example('not executed', failed.notExecuted),
      ...example('ambiguous', failed.ambiguous),
      ...example('unread at kill', failed.unreadAtKill),
    ],
  };
}

/** Runs both phases on one fresh local mesh; the no-fault phase first. */
export async function runFaultPhase(): Promise<FaultPhaseResult[]> {
  const mesh = await startLocalMesh();
  const pool = new Pool(`http://127.0.0.1:${mesh.gatewayPort}`, { connections: 64, pipelining: 1 });
  try {
    // warm up (and make sure the path works) before anything is measured
    const warm = await load(pool, 'warm', () => undefined, 2000);
    if (warm.filter((c) => c.status === 200).length === 0)
      throw new Error(`the fault mesh answers no call: ${warm[0]?.status} ${warm[0]?.error ?? ''}`);
    const steady = summarize('no faults', await load(pool, 'steady', () => undefined), mesh.logDir, []);

    const kills: number[] = [];
    const readyAfter = [0, 0]; // output line after which replica i must say ready again before it is killed
    let next = 0;
    let lastKill = performance.now();
    const killer = (): void => {
      if (performance.now() - lastKill < KILL_EVERY_MS) return;
      const pids = [mesh.readyPid(0, readyAfter[0]), mesh.readyPid(1, readyAfter[1])];
      if (pids[0] === undefined || pids[1] === undefined) return; // one is still restarting: never both down
      const victim = next;
      next = 1 - next;
      lastKill = performance.now();
      readyAfter[victim] = mesh.lines.length;
      try {
        process.kill(pids[victim]!, 'SIGKILL');
        kills.push(lastKill);
      } catch {
        // it died on its own meanwhile
      }
    };
    const faults = summarize(
      'one replica killed every few seconds',
      await load(pool, 'faults', killer),
      mesh.logDir,
      kills,
    );
    return [steady, faults];
  } finally {
    await pool.close();
    await mesh.stop();
  }
}

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/** The markdown the bench prints for the fault phase. */
export function faultTable(results: FaultPhaseResult[]): string[] {
  const lines: string[] = [];
  lines.push(
    `fault phase — fnmesh local, 2 replicas of an at-most-once function (${DELAY_MS} ms per call), ${RATE} req/s open loop for ${PHASE_MS / 1000} s per phase, a replica's function SIGKILLed every ${KILL_EVERY_MS / 1000} s in the second`,
  );
  lines.push('');
  lines.push(
    '| phase | calls | failed | not executed, failed (target 0) | ambiguous (ran, cut: 502) | unread at a kill | retried (attempts > 1) | kills | p50 ms | p99 ms | max ms |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results)
    lines.push(
      `| ${r.name} | ${r.calls} | ${r.failed} | ${r.notExecuted} | ${r.ambiguous} | ${r.unreadAtKill} | ${r.retried} | ${r.kills} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} |`,
    );
  const [steady, faults] = results;
  if (steady && faults) {
    lines.push('');
    lines.push('| target | measured | goal | met |');
    lines.push('|---|---|---|---|');
    lines.push(
      `| failed calls that no function started | ${faults.notExecuted} | 0 | ${faults.notExecuted === 0 ? 'yes' : 'no'} |`,
    );
    lines.push(`| p99 during faults × without | ${fmt(faults.p99 / steady.p99)} | (reported) | — |`);
  }
  for (const r of results) for (const e of r.examples) lines.push(`\n${r.name}, first ${e}`);
  return lines;
}

// `node dist/bench/fault-phase.js`: the fault phase alone (after `npm run build`)
if (require.main === module) {
  runFaultPhase().then(
    (results) => console.log(faultTable(results).join('\n')),
    (err: unknown) => {
      console.error(`bench fault phase failed: ${err instanceof Error ? err.message : String(err)}`);
      process.exit(1);
    },
  );
}
