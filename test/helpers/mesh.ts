/**
 * Building blocks for end-to-end suites: real replicas (an SDK function + a real sidecar) in this process or
 * as separate OS processes (the built `bin/fnmesh.js sidecar` and a Node function on the built SDK), and
 * HTTP calls to a gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { silentLogger, type Logger } from '../../common';
import { serve, type Functions, type ServeHandle } from '../../sdk';
import { loadSidecarConfig, startSidecar, type Sidecar } from '../../sidecar';
import { freePort } from './ports';
import { waitFor } from './wait';

export const ROOT = path.resolve(__dirname, '..', '..');
export const CLI = path.join(ROOT, 'bin', 'fnmesh.js');
export const BUILT_CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
export const BUILT_SDK = path.join(ROOT, 'dist', 'sdk', 'index.js');

/** Throws a clear error when the compiled CLI/SDK are missing (the process scenarios run them). */
export function requireBuilt(): void {
  for (const file of [BUILT_CLI, BUILT_SDK]) {
    if (!existsSync(file))
      throw new Error(`${path.relative(ROOT, file)} is missing: run \`npm run build\` first (\`npm test\` does it)`);
  }
}

export interface Answer {
  status: number;
  headers: Headers;
  body: { result?: unknown; error?: string };
  ms: number;
}

/** POST /v1/api/{ns}/functions/{svc}/{fn} over real HTTP. Never throws on an HTTP status. */
export async function callGateway(
  gatewayUrl: string,
  route: string,
  body: unknown = { params: null },
  headers: Record<string, string> = {},
): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${gatewayUrl}/v1/api/${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Answer['body'];
  try {
    parsed = text ? (JSON.parse(text) as Answer['body']) : {};
  } catch {
    parsed = { error: `(not JSON) ${text}` };
  }
  return { status: res.status, headers: res.headers, body: parsed, ms: performance.now() - started };
}

export interface Replica {
  fn: ServeHandle;
  sidecar: Sidecar;
  callPort: number;
  stop(): Promise<void>;
}

/** An SDK function + a real sidecar, both in this process; resolves once the sidecar is ready. */
export async function startReplica(options: {
  natsUrl: string;
  namespace: string;
  service: string;
  functions: Functions;
  env?: Record<string, string>;
  /** The sidecar's logger (default: silent). */
  logger?: Logger;
}): Promise<Replica> {
  const callPort = await freePort();
  const fn = await serve(options.functions, {
    port: 0,
    handleSignals: false,
    sidecarUrl: `http://127.0.0.1:${callPort}`,
    onError: () => undefined,
  });
  let sidecar: Sidecar;
  try {
    sidecar = await startSidecar(
      loadSidecarConfig({
        FNMESH_NAMESPACE: options.namespace,
        FNMESH_SERVICE: options.service,
        FNMESH_NATS_URL: options.natsUrl,
        FNMESH_FUNCTION_PORT: String(fn.port),
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_CALL_LISTEN: `127.0.0.1:${callPort}`,
        FNMESH_DRAIN_TIMEOUT_MS: '5000',
        FNMESH_LOG_LEVEL: 'silent',
        ...options.env,
      }),
      { logger: options.logger ?? silentLogger },
    );
  } catch (err) {
    await fn.close();
    throw err;
  }
  await waitFor(() => sidecar.readiness().ready, { what: `sidecar of ${options.namespace}/${options.service} ready` });
  let stopped: Promise<void> | undefined;
  return {
    fn,
    sidecar,
    callPort,
    stop: () => (stopped ??= sidecar.stop().then(() => fn.close())),
  };
}

/** A real sidecar in this process for a function served elsewhere (e.g. a child process). */
export async function startSidecarFor(options: {
  natsUrl: string;
  namespace: string;
  service: string;
  functionPort: number;
  env?: Record<string, string>;
}): Promise<Sidecar> {
  const sidecar = await startSidecar(
    loadSidecarConfig({
      FNMESH_NAMESPACE: options.namespace,
      FNMESH_SERVICE: options.service,
      FNMESH_NATS_URL: options.natsUrl,
      FNMESH_FUNCTION_PORT: String(options.functionPort),
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_CALL_LISTEN: '127.0.0.1:0',
      FNMESH_DRAIN_TIMEOUT_MS: '5000',
      FNMESH_LOG_LEVEL: 'silent',
      ...options.env,
    }),
    { logger: silentLogger },
  );
  await waitFor(() => sidecar.readiness().ready, { what: `sidecar of ${options.namespace}/${options.service} ready` });
  return sidecar;
}

export interface Proc {
  child: ChildProcess;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  /** Sends `signal` (if still running) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function track(child: ChildProcess): Proc {
  let out = '';
  const onData = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exit,
    output: () => out,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exit;
    },
  };
}

/**
 * The function of a child-process replica: a Node script on the built SDK. `who` answers its replica name
 * after DELAY_MS; `die` exits the process in the middle of the call. With TRACE_IN_FLIGHT set it prints
 * `IN_FLIGHT <n>` whenever the number of `who` calls it is running changes (see `inFlightCalls`).
 */
const FUNCTION_SCRIPT = `'use strict';
const { serve } = require(process.env.FNMESH_SDK_PATH);
const delay = Number(process.env.DELAY_MS || 0);
const trace = Boolean(process.env.TRACE_IN_FLIGHT);
let inFlight = 0;
const traced = (d) => { inFlight += d; if (trace) process.stdout.write('IN_FLIGHT ' + inFlight + '\\n'); };
serve({
  async who() {
    traced(1);
    try {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      return { replica: process.env.REPLICA_NAME, pid: process.pid };
    } finally {
      traced(-1);
    }
  },
  async die() {
    setImmediate(() => process.exit(1));
    return new Promise(() => undefined);
  },
}, { port: 0, onError: () => undefined }).then((h) => {
  process.stdout.write('LISTENING ' + h.port + '\\n');
});
`;

/** The `who` calls a function process started with TRACE_IN_FLIGHT is running, as it last printed. */
export function inFlightCalls(proc: Proc): number {
  const all = [...proc.output().matchAll(/IN_FLIGHT (\d+)\n/g)];
  return all.length === 0 ? 0 : Number(all[all.length - 1]![1]);
}

/** Starts the function of a process replica; resolves with its port once it listens. */
export async function spawnFunctionProcess(
  dir: string,
  env: Record<string, string>,
): Promise<{ proc: Proc; port: number }> {
  requireBuilt();
  const script = path.join(dir, 'function.js');
  if (!existsSync(script)) writeFileSync(script, FUNCTION_SCRIPT);
  const child = spawn(process.execPath, [script], {
    cwd: dir,
    env: { ...process.env, FNMESH_SDK_PATH: BUILT_SDK, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = track(child);
  const port = await waitFor(
    () => {
      if (child.exitCode !== null)
        throw new Error(`the function process exited with ${child.exitCode}: ${proc.output()}`);
      const m = /LISTENING (\d+)/.exec(proc.output());
      return m ? Number(m[1]) : undefined;
    },
    { timeoutMs: 15_000, what: 'the function process to listen' },
  );
  return { proc, port };
}

/** `node bin/fnmesh.js sidecar` with FNMESH_* env; resolves once its /readyz answers 200. */
export async function spawnSidecarProcess(env: Record<string, string>): Promise<{ proc: Proc; opsPort: number }> {
  requireBuilt();
  const opsPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'sidecar'], {
    cwd: ROOT,
    env: {
      ...process.env,
      FNMESH_OPS_LISTEN: `127.0.0.1:${opsPort}`,
      FNMESH_CALL_LISTEN: '127.0.0.1:0',
      FNMESH_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = track(child);
  await waitFor(
    async () => {
      if (child.exitCode !== null)
        throw new Error(`the sidecar process exited with ${child.exitCode}: ${proc.output()}`);
      const res = await fetch(`http://127.0.0.1:${opsPort}/readyz`);
      await res.arrayBuffer();
      return res.status === 200;
    },
    { timeoutMs: 15_000, what: 'the sidecar process to be ready' },
  );
  return { proc, opsPort };
}
