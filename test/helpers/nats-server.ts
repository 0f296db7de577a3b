/**
 * Starts a real `nats-server` (Debian's package) on a free loopback port for one test file.
 * `await server.stop()` in afterAll. `restart()` stops and starts it on the same port (for reconnect tests).
 */
import { operatorModeConfig } from '../../common/nats-identity';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort, waitForPort } from './ports';

export interface NatsServerOptions {
  /** Extra config file text (e.g. authorization blocks). */
  config?: string;
  maxPayload?: number;
  token?: string;
  port?: number;
  /** Users (user/password) with optional publish/subscribe allow lists; exclusive with `token`. */
  users?: NatsServerUser[];
  /** nats-server's max_pending: outbound bytes per client before it is closed as a slow consumer. */
  maxPending?: number;
  /** nats-server's ping_interval / ping_max (e.g. '1s'). */
  pingInterval?: string;
  maxPingsOut?: number;
  /** Operator mode: the operator JWT and the account JWTs a memory resolver preloads. */
  operator?: OperatorMode;
  /** Serve TLS with these PEM files; with `caFile`, client certificates are required (`verify: true`). */
  tls?: TlsFiles;
}

export interface OperatorMode {
  operatorJwt: string;
  /** Account JWTs (keyed by nothing: the key is read from each JWT's subject). */
  accountJwts: string[];
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

/** The subject (public key) of a JWT, read without verifying it (nats-server verifies). */
function jwtSubject(jwt: string): string {
  const body = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
  if (typeof body.sub !== 'string') throw new Error('account JWT without a subject');
  return body.sub;
}

/** nats-server's operator mode with `resolver: MEMORY` and the accounts in `resolver_preload` (the project's builder). */
export function operatorConfig(mode: OperatorMode): string {
  return operatorModeConfig({
    operatorJwt: mode.operatorJwt,
    accounts: Object.fromEntries(mode.accountJwts.map((j) => [jwtSubject(j), j])),
  });
}

export function tlsConfig(files: TlsFiles): string {
  const ca = files.caFile ? `, ca_file: ${JSON.stringify(files.caFile)}, verify: true` : '';
  return `tls { cert_file: ${JSON.stringify(files.certFile)}, key_file: ${JSON.stringify(files.keyFile)}${ca} }`;
}

export interface NatsServerUser {
  user: string;
  password: string;
  permissions?: { publish?: string[]; subscribe?: string[] };
}

/** The `authorization { users = [...] }` block for a list of users. */
export function usersConfig(users: NatsServerUser[]): string {
  const list = (xs: string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const entries = users.map((u) => {
    const perms: string[] = [];
    if (u.permissions?.publish) perms.push(`publish: { allow: ${list(u.permissions.publish)} }`);
    if (u.permissions?.subscribe) perms.push(`subscribe: { allow: ${list(u.permissions.subscribe)} }`);
    const p = perms.length ? `, permissions: { ${perms.join(', ')} }` : '';
    return `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${p} }`;
  });
  return `authorization {\n  users = [\n${entries.join('\n')}\n  ]\n}`;
}

export interface RunningNatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Kills the server without cleaning up (for outage tests); `start()` brings it back on the same port. */
  kill(): Promise<void>;
  start(): Promise<void>;
}

export function natsServerBinary(): string {
  return process.env.NATS_SERVER_BIN ?? 'nats-server';
}

export async function startNatsServer(options: NatsServerOptions = {}): Promise<RunningNatsServer> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-nats-'));
  const conf = path.join(dir, 'nats.conf');
  const lines = [`listen: 127.0.0.1:${port}`];
  if (options.maxPayload) lines.push(`max_payload: ${options.maxPayload}`);
  if (options.token) lines.push(`authorization { token: "${options.token}" }`);
  if (options.users?.length) lines.push(usersConfig(options.users));
  if (options.maxPending) lines.push(`max_pending: ${options.maxPending}`);
  if (options.pingInterval) lines.push(`ping_interval: "${options.pingInterval}"`);
  if (options.maxPingsOut) lines.push(`ping_max: ${options.maxPingsOut}`);
  if (options.operator) lines.push(operatorConfig(options.operator));
  if (options.tls) lines.push(tlsConfig(options.tls));
  if (options.config) lines.push(options.config);
  writeFileSync(conf, lines.join('\n') + '\n');
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    child = spawn(natsServerBinary(), ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) => {
      child!.once('exit', (code) => reject(new Error(`nats-server exited with ${code}: ${stderr}`)));
      child!.once('error', (err) =>
        reject(
          new Error(
            `cannot start nats-server (${natsServerBinary()}): ${err.message}; install it with: apt-get install -y nats-server`,
          ),
        ),
      );
    });
    exited.catch(() => undefined);
    await Promise.race([waitForPort(port, 10_000), exited]);
  };

  const stopProcess = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };

  await start();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    start,
    kill: stopProcess,
    async stop() {
      await stopProcess();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await stopProcess();
      await start();
    },
  };
}
