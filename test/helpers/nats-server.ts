/**
 * Starts a real `nats-server` (Debian's package) on a free loopback port for one test file.
 * `await server.stop()` in afterAll. `restart()` stops and starts it on the same port (for reconnect tests).
 */
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
      child!.once('error', (err) => reject(new Error(`cannot start nats-server (${natsServerBinary()}): ${err.message}; install it with: apt-get install -y nats-server`)));
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
