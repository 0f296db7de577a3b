/**
 * `npm run bench`: the function call path, side by side in one run on this machine.
 *   direct  — HTTP straight to the echo function (the baseline)
 *   mesh    — HTTP to the gateway → NATS (embedded broker) → sidecar → the same function
 *   mesh auth — the same on a second mesh with every part its own NATS user and the broker checking JWTs and
 *             permissions (as `fnmesh local` runs); `npm run bench:mesh-auth` compares the two in alternating rounds
 *   nats    — a bare NATS request/reply through the same broker (the floor)
 * Prints p50/p90/p99 at a fixed rate (open loop), maximum throughput (closed loop), ratios to the direct
 * call, the sidecar's resident memory idle, under load and after load, and its start-to-ready time, as a markdown
 * table. Idle: once the first calls are answered and the sidecar's RSS holds still. After load: the mesh's
 * throughput run ends, then the sidecar is left quiet for its idle collections (FNMESH_IDLE_GC_MS and
 * SHRINK_GAP_MS, the sidecar's defaults) plus 2 s, and read once its RSS holds still.
 * Then the fault phase (bench/fault-phase.ts; BENCH_FAULT=0 skips it), on a mesh of its own once the first is
 * stopped: the same load on two replicas without faults and with one replica's function killed every few seconds.
 * Last the chart on `fnmesh cluster` (bench/cluster.ts; BENCH_CLUSTER=0 skips it): chart gateway + NATS vs the
 * function pods called directly, for the bundled NATS cluster and the embedded broker.
 */
import os from 'node:os';
import path from 'node:path';
import { Pool } from 'undici';
import { connect } from '@nats-io/transport-node';
import { httpSender, openLoop, closedLoop, type LatencySummary, type Send } from './load';
import { SIDECAR_QUIET_MS, freePort, settledRss, startProc, waitHttpOk, type Proc } from './procs';
import { cli, ECHO_CALL_PATH, root, startEchoMesh } from './echo-mesh';
import { faultTable, runFaultPhase } from './fault-phase';
import { runClusterBench } from './cluster';

const RATE = Number(process.env.BENCH_RATE ?? 1000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_SECONDS ?? 10) * 1000;
const THROUGHPUT_MS = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 5) * 1000;
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const payload = JSON.stringify({ message: 'hello', n: 42 });

const fmt = (n: number, digits = 2): string => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

async function main(): Promise<void> {
  const sut = await startEchoMesh();
  const extra: Proc[] = [];
  let authed: Awaited<ReturnType<typeof startEchoMesh>> | undefined;
  try {
    authed = await startEchoMesh({ auth: true });
    const { gateway, sidecar, fnPort, gatewayPort: gwPort, natsUrl } = sut;
    const [ops2Port, call2Port] = await Promise.all([freePort(), freePort()]);

    // Start-to-ready: a sidecar spawned with its function already up, until /readyz answers 200 (median of 3).
    const readyTimes: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = Date.now();
      const probe = startProc('sidecar-probe', [cli, 'sidecar'], sut.sidecarEnv(ops2Port!, call2Port!));
      await waitHttpOk(`http://127.0.0.1:${ops2Port}/readyz`);
      readyTimes.push(Date.now() - t0);
      await probe.stop();
    }
    readyTimes.sort((a, b) => a - b);

    const responder = startProc('nats-responder', [path.join(root, 'dist', 'bench', 'nats-responder.js')], {
      NATS_URL: natsUrl,
    });
    extra.push(responder);
    await new Promise<void>((resolve) => responder.child.stdout?.once('data', () => resolve()));

    const directPool = new Pool(`http://127.0.0.1:${fnPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const meshPool = new Pool(`http://127.0.0.1:${gwPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const authPool = new Pool(`http://127.0.0.1:${authed.gatewayPort}`, { connections: CONCURRENCY, pipelining: 1 });
    const nc = await connect({ servers: natsUrl });
    const natsBody = new TextEncoder().encode(payload);
    const targets: { name: string; send: Send }[] = [
      { name: 'direct', send: httpSender(directPool, '/echo', payload) },
      { name: 'mesh', send: httpSender(meshPool, ECHO_CALL_PATH, `{"params":${payload}}`) },
      { name: 'mesh auth', send: httpSender(authPool, ECHO_CALL_PATH, `{"params":${payload}}`) },
      { name: 'nats', send: async () => void (await nc.request('bench.echo', natsBody, { timeout: 5000 })) },
    ];

    // the mesh path must work before anything is measured
    await targets[1]!.send();
    await targets[2]!.send();
    const idle = await settledRss(sidecar, 10_000);
    const idleRss = idle.mb;

    for (const t of targets) await closedLoop(t.send, 16, 1000); // warm up JITs and connections

    const latency = new Map<string, LatencySummary>();
    for (const t of targets) latency.set(t.name, await openLoop(t.send, RATE, LATENCY_MS));

    const throughput = new Map<string, { rate: number; errors: number }>();
    let loadRss = 0;
    let afterLoad = { mb: NaN, settled: false };
    for (const t of targets) {
      const sampler =
        t.name === 'mesh' ? setInterval(() => (loadRss = Math.max(loadRss, sidecar.rssMb())), 200) : undefined;
      throughput.set(t.name, await closedLoop(t.send, CONCURRENCY, THROUGHPUT_MS));
      if (sampler) {
        clearInterval(sampler);
        // the sidecar quiet (the next targets do not call it): its idle compaction, then a still RSS
        await new Promise((r) => setTimeout(r, SIDECAR_QUIET_MS));
        afterLoad = await settledRss(sidecar, 10_000);
      }
    }
    const gatewayRss = gateway.rssMb();
    await nc.close();
    await directPool.close();
    await meshPool.close();
    await authPool.close();

    const direct = latency.get('direct')!;
    const directRate = throughput.get('direct')!.rate;
    const lines: string[] = [];
    lines.push(
      `fnmesh bench — ${os.cpus().length} cores, node ${process.version}, ${RATE} req/s open loop for ${LATENCY_MS / 1000} s, max throughput with ${CONCURRENCY} concurrent for ${THROUGHPUT_MS / 1000} s`,
    );
    lines.push('');
    lines.push(
      '| path | p50 ms | p90 ms | p99 ms | errors | added p50 ms | added p99 ms | max req/s | throughput × direct |',
    );
    lines.push('|---|---|---|---|---|---|---|---|---|');
    for (const t of targets) {
      const l = latency.get(t.name)!;
      const th = throughput.get(t.name)!;
      lines.push(
        `| ${t.name} | ${fmt(l.p50)} | ${fmt(l.p90)} | ${fmt(l.p99)} | ${l.errors + th.errors} | ${fmt(l.p50 - direct.p50)} | ${fmt(l.p99 - direct.p99)} | ${fmt(th.rate, 0)} | ${fmt(th.rate / directRate)} |`,
      );
    }
    lines.push('');
    lines.push('| sidecar | value |');
    lines.push('|---|---|');
    const still = (r: { settled: boolean }): string => (r.settled ? '' : ' (still moving at the deadline)');
    lines.push(`| resident memory idle | ${fmt(idleRss, 1)} MB${still(idle)} |`);
    lines.push(`| resident memory under load (max) | ${fmt(loadRss, 1)} MB |`);
    lines.push(
      `| resident memory after load (quiet ${SIDECAR_QUIET_MS / 1000} s, then still) | ${fmt(afterLoad.mb, 1)} MB${still(afterLoad)} |`,
    );
    lines.push(`| start to ready (median of 3) | ${readyTimes[1]} ms |`);
    lines.push(`| gateway (with embedded broker) resident memory after load | ${fmt(gatewayRss, 1)} MB |`);
    const mesh = latency.get('mesh')!;
    const meshRatio = throughput.get('mesh')!.rate / directRate;
    lines.push('');
    lines.push('| target | measured | goal | met |');
    lines.push('|---|---|---|---|');
    const row = (name: string, value: string, goal: string, ok: boolean): void =>
      void lines.push(`| ${name} | ${value} | ${goal} | ${ok ? 'yes' : 'no'} |`);
    row('mesh adds at p50', `${fmt(mesh.p50 - direct.p50)} ms`, '≤ 1 ms', mesh.p50 - direct.p50 <= 1);
    row('mesh adds at p99', `${fmt(mesh.p99 - direct.p99)} ms`, '≤ 3 ms', mesh.p99 - direct.p99 <= 3);
    row('mesh throughput × direct', fmt(meshRatio), '≥ 0.40', meshRatio >= 0.4);
    const auth = latency.get('mesh auth')!;
    const authRatio = throughput.get('mesh auth')!.rate / throughput.get('mesh')!.rate;
    row(
      'NATS auth on: added p50 × off',
      fmt((auth.p50 - direct.p50) / (mesh.p50 - direct.p50)),
      '≤ 1.05',
      auth.p50 - direct.p50 <= (mesh.p50 - direct.p50) * 1.05,
    );
    row('NATS auth on: throughput × off', fmt(authRatio), '≥ 0.95', authRatio >= 0.95);
    row('sidecar idle memory', `${fmt(idleRss, 1)} MB`, '≤ 50 MB', idleRss <= 50);
    row('sidecar memory after load', `${fmt(afterLoad.mb, 1)} MB`, '≤ 50 MB (back to idle)', afterLoad.mb <= 50);
    console.log(lines.join('\n'));
  } finally {
    for (const p of extra) await p.stop();
    await authed?.stop();
    await sut.stop();
  }
  if (process.env.BENCH_FAULT !== '0') console.log(['', ...faultTable(await runFaultPhase())].join('\n'));
  if (process.env.BENCH_CLUSTER !== '0') console.log(['', ...(await runClusterBench())].join('\n'));
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
