/**
 * End-to-end: `fnmesh local` as a real process (built CLI), with the real example services (TypeScript on
 * the SDK, Python on the standard library), real sidecar processes, the gateway's embedded broker and real
 * HTTP. Covers: the printed curl works, function-to-function calls, rules, crash → restart, hot reload
 * (scale up + rule change), and Ctrl-C leaving no processes behind.
 *
 * Needs `npm run build` first (`npm test` does it).
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator } from '@nats-io/nats-core';
import { inboxPrefix } from '../common/nats-identity';
import { parse, stringify } from 'yaml';
import { ROOT, startCli } from './helpers/cli-process';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

const BUILT = path.join(ROOT, 'dist', 'cli', 'main.js');

jest.setTimeout(180_000);

interface Mesh {
  child: ChildProcess;
  lines: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  gateway: string;
  brokerPort: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Copies the example manifests into `dir`, with spec.local.cwd made absolute (the examples' folders). */
function copyExamples(dir: string): void {
  for (const name of ['greeter.yaml', 'text.yaml', 'authz.yaml']) {
    const doc = parse(readFileSync(path.join(ROOT, 'examples', name), 'utf8')) as { spec: { local: { cwd?: string } } };
    doc.spec.local.cwd = path.resolve(ROOT, 'examples', doc.spec.local.cwd ?? '.');
    writeFileSync(path.join(dir, name), stringify(doc));
  }
}

function editManifest(
  file: string,
  edit: (doc: { spec: { replicas: number; functions: { name: string; rule?: unknown }[] } }) => void,
): void {
  const doc = parse(readFileSync(file, 'utf8')) as {
    spec: { replicas: number; functions: { name: string; rule?: unknown }[] };
  };
  edit(doc);
  writeFileSync(file, stringify(doc));
}

async function startMesh(dir: string, extraEnv: Record<string, string> = {}): Promise<Mesh> {
  const port = await freePort();
  const brokerPort = await freePort();
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FNMESH_LISTEN: `127.0.0.1:${port}`,
    FNMESH_OPS_LISTEN: '127.0.0.1:0',
    FNMESH_BROKER_PORT: String(brokerPort),
    NO_COLOR: '1',
    ...extraEnv,
  };
  delete env.FNMESH_NATS_URL;
  const { child, lines, exit } = startCli(['local', dir], env);
  return { child, lines, exit, gateway: `http://127.0.0.1:${port}`, brokerPort };
}

/** The first line at or after `from` that matches, waiting for it. */
async function waitLine(
  mesh: Mesh,
  re: RegExp,
  what: string,
  from = 0,
  timeoutMs = 60_000,
): Promise<{ line: string; index: number; match: RegExpExecArray }> {
  return waitFor(
    () => {
      if (mesh.child.exitCode !== null)
        throw new Error(`fnmesh local exited (${mesh.child.exitCode}); output:\n${mesh.lines.slice(-40).join('\n')}`);
      for (let i = from; i < mesh.lines.length; i++) {
        const m = re.exec(mesh.lines[i]!);
        if (m) return { line: mesh.lines[i]!, index: i, match: m };
      }
      return undefined;
    },
    { timeoutMs, intervalMs: 25, what },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- last output ---\n${mesh.lines.slice(-40).join('\n')}`);
  });
}

async function call(
  mesh: Mesh,
  service: string,
  fn: string,
  params: unknown,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${mesh.gateway}/v1/api/default/functions/${service}/${fn}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** The observer's `.creds` the mesh printed (its NATS users' private directory), for discovery. */
async function observerCreds(mesh: Mesh): Promise<string> {
  const dir = (await waitLine(mesh, /^\s+nats users (\S+)/, 'the NATS users line')).match[1]!;
  return path.join(dir, 'observer.creds');
}

/** Distinct replicas of a service answering NATS micro discovery ($SRV.PING.<name>), asked as the observer. */
async function microPingCount(natsUrl: string, name: string, creds: string): Promise<number> {
  const nc = await connect({
    servers: natsUrl,
    authenticator: credsAuthenticator(new Uint8Array(readFileSync(creds))),
    inboxPrefix: inboxPrefix({ kind: 'observer' }),
  });
  try {
    const inbox = nc.subscribe(`${inboxPrefix({ kind: 'observer' })}.${Math.random().toString(36).slice(2)}`);
    const ids = new Set<string>();
    const collecting = (async () => {
      for await (const m of inbox) {
        const body = m.json<{ id?: string }>();
        if (body.id) ids.add(body.id);
      }
    })();
    nc.publish(`$SRV.PING.${name}`, '', { reply: inbox.getSubject() });
    await nc.flush();
    // replies arrive within one round trip of every replica; a second flush orders us after them
    await waitFor(() => ids.size > 0, { timeoutMs: 2_000, what: 'a PING reply' }).catch(() => undefined);
    await nc.flush();
    inbox.unsubscribe();
    await collecting;
    return ids.size;
  } finally {
    await nc.close();
  }
}

describe('fnmesh local (end to end)', () => {
  let dir: string;
  let mesh: Mesh | undefined;

  beforeAll(() => {
    if (!existsSync(BUILT))
      throw new Error(`${BUILT} is missing: run \`npm run build\` before this suite (npm test does it)`);
    if (!existsSync(path.join(ROOT, 'dist', 'examples', 'greeter', 'index.js')))
      throw new Error('dist/examples/greeter/index.js is missing: run `npm run build`');
  });

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-'));
    copyExamples(dir);
  });

  afterEach(async () => {
    if (mesh && mesh.child.exitCode === null && mesh.child.signalCode === null) {
      mesh.child.kill('SIGINT');
      await Promise.race([mesh.exit, new Promise((r) => setTimeout(r, 20_000))]);
      if (mesh.child.exitCode === null) mesh.child.kill('SIGKILL');
    }
    mesh = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the examples, restarts crashed processes, follows manifest edits and stops cleanly on Ctrl-C', async () => {
    mesh = await startMesh(dir);
    const m = mesh;

    // 1. The printed curl (one plain line) works as pasted.
    const curlLine = (await waitLine(m, /^curl /, 'the ready-to-paste curl line')).line;
    expect(curlLine).toContain(`${m.gateway}/v1/api/default/functions/greeter/hello`);
    const pasted = await new Promise<string>((resolve, reject) =>
      execFile('bash', ['-c', curlLine], { timeout: 10_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    expect(JSON.parse(pasted)).toEqual({ result: { greeting: 'Hello, Ada!' } });
    const brokerLine = (await waitLine(m, /^\s+broker\s+(nats:\/\/\S+)/, 'the broker line')).match[1]!;
    expect(brokerLine).toBe(`nats://127.0.0.1:${m.brokerPort}`);
    const observer = await observerCreds(m);

    // 2. Calls through the mesh, including function → function (greeter.shout → text.upper, Python).
    expect(await call(m, 'greeter', 'hello', { name: 'Grace' })).toEqual({
      status: 200,
      body: { result: { greeting: 'Hello, Grace!' } },
    });
    const shout = await call(m, 'greeter', 'shout', { name: 'Ada' });
    expect(shout).toEqual({ status: 200, body: { result: { greeting: 'HELLO, ADA!', via: 'default/text.upper' } } });
    expect(await call(m, 'text', 'count', { text: 'a b c' })).toMatchObject({
      status: 200,
      body: { result: { words: 3, characters: 5 } },
    });
    // text.upper admits only default/greeter or a signed-in user: an anonymous outside call is refused
    // with 401, since the rule reads the caller's identity and signing in may change the answer.
    expect((await call(m, 'text', 'upper', { text: 'x' })).status).toBe(401);
    // Bad input is the function's 400, passed through.
    const bad = await call(m, 'greeter', 'hello', {});
    expect(bad.status).toBe(400);
    expect(String(bad.body.error)).toContain('params.name');

    // A func rule: greeter.welcome asks authz.canGreet, which refuses some names.
    expect(await call(m, 'greeter', 'welcome', { name: 'Ada' })).toEqual({
      status: 200,
      body: { result: { message: 'Welcome, Ada!' } },
    });
    expect((await call(m, 'greeter', 'welcome', { name: 'Mallory' })).status).toBe(403);
    expect((await call(m, 'authz', 'canGreet', { name: 'Ada' })).status).toBe(403);

    // 3. whoami (rule authenticated) without a JWT: 401, a token is required.
    const whoami = await call(m, 'greeter', 'whoami', {});
    expect(whoami.status).toBe(401);
    expect(typeof whoami.body.error).toBe('string');
    // With the token the mesh prints for this run (user ada, role admin): whoami and the nested admin rule pass.
    const token = (await waitLine(m, /authorization: Bearer ([A-Za-z0-9_.-]+)/, 'the signed-in curl')).match[1]!;
    const me = await call(m, 'greeter', 'whoami', {}, token);
    expect(me.status).toBe(200);
    expect((me.body.result as { claims: Record<string, unknown> }).claims).toMatchObject({ sub: 'ada', role: 'admin' });
    expect(await call(m, 'greeter', 'admin', {}, token)).toMatchObject({
      status: 200,
      body: { result: { welcome: 'admin ada', role: 'admin' } },
    });
    // A signed-in user may call text.upper directly (its rule: caller is default/greeter OR authenticated).
    expect(await call(m, 'text', 'upper', { text: 'abc' }, token)).toMatchObject({
      status: 200,
      body: { result: { text: 'ABC' } },
    });
    // An undeclared function falls to greeter's `default` entry: deny.
    expect((await call(m, 'greeter', 'nope', {}, token)).status).toBe(403);

    // 4. kill -9 a function process: the supervisor restarts it, the replica is ready again, calls succeed.
    const started = await waitLine(m, /greeter-0 fn started \(pid (\d+)\)/, 'greeter-0 fn pid');
    const oldPid = Number(started.match[1]);
    const mark = m.lines.length;
    process.kill(oldPid, 'SIGKILL');
    await waitLine(m, /greeter-0 fn was killed by SIGKILL; restarting in \d+ ms/, 'the crash report', mark, 10_000);
    const restarted = await waitLine(m, /greeter-0 fn started \(pid (\d+)\)/, 'greeter-0 fn restarted', mark, 20_000);
    expect(Number(restarted.match[1])).not.toBe(oldPid);
    await waitLine(m, /greeter-0 ready/, 'greeter-0 ready again', restarted.index, 20_000);
    // Every call succeeds again (both replicas take calls in turn): ten in a row.
    await waitFor(
      async () => {
        for (let i = 0; i < 10; i++)
          if ((await call(m, 'greeter', 'hello', { name: 'Ada' })).status !== 200) return false;
        return true;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: 'ten successful calls in a row after the restart' },
    );

    // 5. Hot reload: text replicas 2 → 3 and count's rule allow → deny.
    await waitFor(async () => (await microPingCount(brokerLine, 'fnmesh-default-text', observer)) === 2, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: '2 text replicas answering $SRV.PING',
    });
    const beforeEdit = m.lines.length;
    editManifest(path.join(dir, 'text.yaml'), (doc) => {
      doc.spec.replicas = 3;
      doc.spec.functions.find((f) => f.name === 'count')!.rule = { rule: 'deny' };
    });
    await waitFor(async () => (await call(m, 'text', 'count', { text: 'a' })).status === 403, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'the new deny rule',
    });
    await waitLine(m, /text-2 ready/, 'the third text replica', beforeEdit, 30_000);
    await waitFor(async () => (await microPingCount(brokerLine, 'fnmesh-default-text', observer)) === 3, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: '3 text replicas answering $SRV.PING',
    });
    // The other replicas were not restarted by a replicas/rule edit.
    expect(m.lines.slice(beforeEdit).some((l) => /text-[01] (fn|sc) started/.test(l))).toBe(false);
    // greeter.shout still reaches text.upper through the new set of replicas.
    expect((await call(m, 'greeter', 'shout', { name: 'x' })).status).toBe(200);

    // 6. Ctrl-C: exit 0, sidecars stopped before their functions, no process left behind.
    const pids = m.lines.flatMap((l) => {
      const r = /(\S+ (?:fn|sc)) started \(pid (\d+)\)/.exec(l);
      return r ? [Number(r[2])] : [];
    });
    expect(pids.length).toBeGreaterThanOrEqual(12); // 6 replicas × 2, plus the restart
    const beforeStop = m.lines.length;
    m.child.kill('SIGINT');
    const exit = await m.exit;
    expect(exit).toEqual({ code: 0, signal: null });
    const tail = m.lines.slice(beforeStop);
    const stopOrder = (id: string): [number, number] => [
      tail.findIndex((l) => l.includes(`${id} sidecar exited (exit code 0)`)),
      tail.findIndex((l) => l.includes(`${id} stopped`)),
    ];
    const [scStopped, replicaStopped] = stopOrder('text-2');
    expect(scStopped).toBeGreaterThanOrEqual(0);
    expect(replicaStopped).toBeGreaterThan(scStopped);
    expect(pids.filter(alive)).toEqual([]);
    // the NATS users' private directory (every .creds) is gone with the mesh
    expect(existsSync(path.dirname(observer))).toBe(false);
  });

  it('scales down sidecar-first, restarts changed replicas one at a time, stops removed services, reports crash loops', async () => {
    editManifest(path.join(dir, 'text.yaml'), (doc) => {
      doc.spec.replicas = 3;
    });
    writeFileSync(
      path.join(dir, 'broken.yaml'),
      stringify({
        apiVersion: 'fnmesh.io/v1alpha1',
        kind: 'FunctionService',
        metadata: { name: 'broken' },
        spec: {
          local: { command: ['node', '-e', "console.error('boom'); process.exit(3)"] },
          functions: [{ name: 'f', rule: { rule: 'allow' } }],
        },
      }),
    );
    writeFileSync(
      path.join(dir, 'remote.yaml'),
      stringify({
        apiVersion: 'fnmesh.io/v1alpha1',
        kind: 'FunctionService',
        metadata: { name: 'remote' },
        spec: { container: { image: 'ghcr.io/fnmesh/remote:1' }, functions: [{ name: 'f', rule: { rule: 'allow' } }] },
      }),
    );
    mesh = await startMesh(dir, { FNMESH_LOCAL_READY_TIMEOUT_MS: '3000' });
    const m = mesh;
    await waitLine(
      m,
      /default\/remote: no spec\.local\.command: fnmesh local cannot start it; it only gets its rules/,
      'the rules-only warning',
    );
    // A crash-looping service does not hold back the banner, and is reported as such.
    await waitLine(m, /^curl /, 'the curl line');
    await waitLine(
      m,
      /broken-0 fn exited with code 3; it keeps crashing \(\d+ times in a row\)/,
      'the crash-loop report',
      0,
      20_000,
    );
    expect(m.lines.some((l) => /broken-0 fn\s+\| boom/.test(l))).toBe(true);
    const broker = `nats://127.0.0.1:${m.brokerPort}`;
    const observer = await observerCreds(m);
    await waitFor(async () => (await microPingCount(broker, 'fnmesh-default-text', observer)) === 3, {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: '3 text replicas',
    });

    // Scale down 3 → 1: the highest indices stop, each sidecar before its function.
    let mark = m.lines.length;
    editManifest(path.join(dir, 'text.yaml'), (doc) => {
      doc.spec.replicas = 1;
    });
    await waitLine(m, /text-1 stopped/, 'text-1 stopped', mark, 30_000);
    await waitLine(m, /text-2 stopped/, 'text-2 stopped', mark, 30_000);
    const after = m.lines.slice(mark);
    for (const id of ['text-1', 'text-2']) {
      // the sidecar drained and exited 0 before its function was stopped
      const sc = after.findIndex((l) => l.includes(`${id} sidecar exited (exit code 0); stopping its function`));
      expect(sc).toBeGreaterThanOrEqual(0);
      expect(after.findIndex((l) => l.includes(`${id} stopped`))).toBeGreaterThan(sc);
    }
    expect(after.some((l) => /text-0 (fn|sc) started/.test(l))).toBe(false);
    await waitFor(async () => (await microPingCount(broker, 'fnmesh-default-text', observer)) === 1, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: '1 text replica',
    });
    expect((await call(m, 'text', 'count', { text: 'a b' })).status).toBe(200);

    // A changed spec.local restarts greeter's replicas one at a time: greeter-1 stops only once greeter-0 is back.
    mark = m.lines.length;
    editManifest(path.join(dir, 'greeter.yaml'), (doc) => {
      (doc.spec as unknown as { local: { env?: Record<string, string> } }).local.env = { GREETER_EDITION: '2' };
    });
    const g0Ready = await waitLine(m, /greeter-0 ready/, 'greeter-0 restarted', mark, 30_000);
    const g1Stopped = await waitLine(m, /greeter-1 stopped/, 'greeter-1 stopped', mark, 30_000);
    const g0Stopped = await waitLine(m, /greeter-0 stopped/, 'greeter-0 stopped', mark, 30_000);
    expect(g0Stopped.index).toBeLessThan(g0Ready.index);
    expect(g1Stopped.index).toBeGreaterThan(g0Ready.index);
    await waitLine(m, /greeter-1 ready/, 'greeter-1 restarted', g1Stopped.index, 30_000);
    expect((await call(m, 'greeter', 'shout', { name: 'Ada' })).status).toBe(200);

    // A removed manifest stops its service; the gateway no longer routes it.
    mark = m.lines.length;
    rmSync(path.join(dir, 'text.yaml'));
    await waitLine(m, /text-0 stopped/, 'text-0 stopped', mark, 30_000);
    await waitFor(async () => (await call(m, 'text', 'count', { text: 'a' })).status === 404, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'text unrouted',
    });

    const pids = m.lines.flatMap((l) => {
      const r = /(?:fn|sc) started \(pid (\d+)\)/.exec(l);
      return r ? [Number(r[1])] : [];
    });
    m.child.kill('SIGINT');
    expect(await m.exit).toEqual({ code: 0, signal: null });
    expect(pids.filter(alive)).toEqual([]);
  });

  it('leaves no process behind even when it is killed with SIGKILL (the reaper)', async () => {
    mesh = await startMesh(dir);
    const m = mesh;
    await waitLine(m, /^curl /, 'the curl line');
    const pids = m.lines.flatMap((l) => {
      const r = /(?:fn|sc) started \(pid (\d+)\)/.exec(l);
      return r ? [Number(r[1])] : [];
    });
    expect(pids.length).toBeGreaterThanOrEqual(10);
    m.child.kill('SIGKILL');
    await m.exit;
    await waitFor(() => pids.filter(alive).length === 0, {
      timeoutMs: 15_000,
      intervalMs: 50,
      what: `every child of the killed mesh to exit (${pids.join(' ')})`,
    });
  });

  it('says which port is taken and how to pick another', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      mesh = await startMesh(dir, { FNMESH_LISTEN: `127.0.0.1:${port}` });
      const exit = await mesh.exit;
      expect(exit.code).toBe(2);
      const text = mesh.lines.join('\n');
      expect(text).toContain(`127.0.0.1:${port}: the port is already in use`);
      expect(text).toContain('FNMESH_LISTEN=127.0.0.1:');
      // the ops listener's port too
      mesh = await startMesh(dir, { FNMESH_OPS_LISTEN: `127.0.0.1:${port}` });
      expect((await mesh.exit).code).toBe(2);
      const ops = mesh.lines.join('\n');
      expect(ops).toContain(`ops listener (/metrics, /v1/services) cannot listen on 127.0.0.1:${port}`);
      expect(ops).toContain(`FNMESH_OPS_LISTEN=127.0.0.1:${port + 1}`);
    } finally {
      blocker.close();
    }
  });
});
