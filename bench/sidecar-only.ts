/**
 * The sidecar alone: NATS request → sidecar → HTTP → the SDK echo function, against a direct HTTP call to
 * the same function. Measures the sidecar's resident memory (idle, under load, and after load once quiet for
 * SIDECAR_QUIET_MS, bench/procs.ts), its start-to-ready time,
 * maximum throughput (closed loop) and p50/p99 at a fixed rate (open loop). Prints a markdown table.
 *
 *   npm run build && node dist/bench/sidecar-only.js
 *
 * Env: NATS_URL (default: an embedded broker in this process), BENCH_RATE (1000), BENCH_LATENCY_SECONDS (5),
 * BENCH_THROUGHPUT_SECONDS (5), BENCH_CONCURRENCY (64), SIDECAR_NODE_OPTIONS (V8/node flags for the sidecar
 * process, e.g. "--max-semi-space-size=8"; default none).
 */
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { connect } from '@nats-io/transport-node';
import { startBroker, type Broker } from '../broker';
import { callSubject, encodeCallHeaders } from '../common/protocol';
import { echoSidecarEnv } from './echo-service';
import { closedLoop, openLoop, type LatencySummary, type Send } from './load';
import { SIDECAR_QUIET_MS, freePort, settledRss, startProc, waitHttpOk, waitPort, type Proc } from './procs';

const RATE = Number(process.env.BENCH_RATE ?? 1000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 5) * 1000;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const IDLE_SETTLE_MS = 2_000;
const root = path.resolve(__dirname, '..', '..');
const payload = JSON.stringify({ message: 'hello', n: 42 });

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sidecarFlags(): string[] {
  const raw = process.env.SIDECAR_NODE_OPTIONS ?? '';
  if (raw.trim() === '' || raw.trim() === 'none') return [];
  return raw.trim().split(/\s+/);
}

async function main(): Promise<void> {
  const procs: Proc[] = [];
  let broker: Broker | undefined;
  try {
    let natsUrl = process.env.NATS_URL;
    if (!natsUrl) {
      broker = await startBroker({});
      natsUrl = broker.url;
    }
    const [fnPort, opsPort, callPort] = await Promise.all([freePort(), freePort(), freePort()]);

    const fn = startProc('function', ['-e', "require('./dist/sdk/index.js').serve({ echo: (p) => p })"], {
      PORT: String(fnPort),
    });
    procs.push(fn);
    await waitPort(fnPort!, 20_000);

    const flags = sidecarFlags();
    const t0 = Date.now();
    // as every starter runs it: a bare `fnmesh sidecar`, which starts its bundle
    const sidecar = startProc('sidecar', [...flags, path.join(root, 'bin', 'fnmesh.js'), 'sidecar'], {
      ...echoSidecarEnv({
        natsUrl,
        fnPort: fnPort!,
        opsPort: opsPort!,
        callPort: callPort!,
        concurrency: CONCURRENCY,
        logLevel: 'error',
      }),
      NODE_OPTIONS: '',
    });
    procs.push(sidecar);
    await waitHttpOk(`http://127.0.0.1:${opsPort}/readyz`, 30_000);
    const readyMs = Date.now() - t0;
    await sleep(IDLE_SETTLE_MS);
    const idleRss = sidecar.rssMb();

    const nc = await connect({ servers: natsUrl });
    const subject = callSubject('bench', 'echo', 'echo');
    const natsBody = new TextEncoder().encode(payload);
    let seq = 0;
    const viaSidecar: Send = async () => {
      const msg = await nc.request(subject, natsBody, {
        timeout: 5_000,
        headers: encodeCallHeaders({ requestId: `b${++seq}`, timeoutMs: 5_000 }),
      });
      if (msg.headers?.get('Fnmesh-Status'))
        throw new Error(`error reply ${msg.headers.get('Fnmesh-Status')}: ${msg.string()}`);
    };
    const directPool = new Pool(`http://127.0.0.1:${fnPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const direct: Send = async () => {
      const res = await directPool.request({
        path: '/echo',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: payload,
      });
      await res.body.dump();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
    };

    await viaSidecar(); // the path must work before anything is measured
    for (const s of [direct, viaSidecar]) await closedLoop(s, 16, 1_000); // warm up JITs and connections

    const targets: { name: string; send: Send }[] = [
      { name: 'direct HTTP', send: direct },
      { name: 'NATS → sidecar', send: viaSidecar },
    ];
    const throughput = new Map<string, { rate: number; errors: number }>();
    const latency = new Map<string, LatencySummary>();
    let loadRss = 0;
    for (const t of targets) {
      const isSidecar = t.send === viaSidecar;
      const sampler = isSidecar ? setInterval(() => (loadRss = Math.max(loadRss, sidecar.rssMb())), 100) : undefined;
      throughput.set(t.name, await closedLoop(t.send, CONCURRENCY, THROUGHPUT_MS));
      latency.set(t.name, await openLoop(t.send, RATE, LATENCY_MS));
      if (sampler) clearInterval(sampler);
    }
    await sleep(SIDECAR_QUIET_MS);
    const afterRss = (await settledRss(sidecar, 10_000)).mb;
    await nc.close();
    await directPool.close();

    const d = latency.get('direct HTTP')!;
    const directRate = throughput.get('direct HTTP')!.rate;
    const lines: string[] = [];
    lines.push(
      `fnmesh sidecar-only bench — ${os.cpus().length} cores, node ${process.version}, sidecar flags: ${flags.join(' ') || '(none)'}, ` +
        `${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s, ${RATE} req/s open loop for ${LATENCY_MS / 1000} s`,
    );
    lines.push('');
    lines.push('| path | max req/s | × direct | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |');
    lines.push('|---|---|---|---|---|---|---|---|');
    for (const t of targets) {
      const l = latency.get(t.name)!;
      const th = throughput.get(t.name)!;
      lines.push(
        `| ${t.name} | ${fmt(th.rate, 0)} | ${fmt(th.rate / directRate)} | ${fmt(l.p50)} | ${fmt(l.p99)} | ${fmt(l.p50 - d.p50)} | ${fmt(l.p99 - d.p99)} | ${l.errors + th.errors} |`,
      );
    }
    lines.push('');
    lines.push('| sidecar | value |');
    lines.push('|---|---|');
    lines.push(`| resident memory idle (ready + ${IDLE_SETTLE_MS / 1000} s) | ${fmt(idleRss, 1)} MB |`);
    lines.push(`| resident memory under load (max) | ${fmt(loadRss, 1)} MB |`);
    lines.push(
      `| resident memory after load (quiet ${SIDECAR_QUIET_MS / 1000} s, then still) | ${fmt(afterRss, 1)} MB |`,
    );
    lines.push(`| start to ready | ${readyMs} ms |`);
    console.log(lines.join('\n'));
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await broker?.close();
  }
}

process.chdir(root);
main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
