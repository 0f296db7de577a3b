/**
 * `fnmesh local` as a user runs it (the built CLI, as a process) for suites that need the whole mesh with its
 * supervisor: on the embedded broker, or on a real nats-server that trusts a trust directory written for it
 * (FNMESH_NATS_URL + FNMESH_LOCAL_NATS_TRUST_DIR). Its replicas are read from what it prints
 * (`<id> ready (function pid N, sidecar pid M, sidecar ops URL)`), so a test can kill one and find its successor.
 */
import { startCli, type CliProcess } from './cli-process';
import type { RunningNatsServer } from './nats-server';
import { startTrustingNatsServer } from './trusting-nats-server';
import { freePort } from './ports';
import { waitFor } from './wait';

export type LocalBroker = 'embedded broker' | 'nats-server';
export const LOCAL_BROKERS: LocalBroker[] = ['embedded broker', 'nats-server'];

export interface LocalReplicaSeen {
  /** `<service>-<index>` */
  id: string;
  fnPid: number;
  scPid: number;
  /** The sidecar's ops server (/readyz, /metrics). */
  ops: string;
  /** Index of the output line that said so. */
  line: number;
}

export interface LocalMeshRun {
  cli: CliProcess;
  gateway: string;
  /** The gateway's ops listener (/v1/services, /metrics). */
  gatewayOps: string;
  /** The latest "ready" line of replica `id` at or after output line `from`. */
  replica(id: string, from?: number): LocalReplicaSeen | undefined;
  /** Waits for replica `id` to say ready at or after output line `from`. */
  waitReady(id: string, from?: number, timeoutMs?: number): Promise<LocalReplicaSeen>;
  waitLine(
    re: RegExp,
    what: string,
    from?: number,
    timeoutMs?: number,
  ): Promise<{ index: number; match: RegExpExecArray }>;
  output(lines?: number): string;
  stop(): Promise<void>;
}

const READY = /(\S+) ready \(function pid (\d+), sidecar pid (\d+), sidecar ops (\S+)\)/;

/** Starts `fnmesh local <dir>` and waits for its banner (every replica started, or reported). */
export async function startLocalMeshCli(
  dir: string,
  broker: LocalBroker,
  extraEnv: Record<string, string> = {},
): Promise<LocalMeshRun> {
  const [port, opsPort] = [await freePort(), await freePort()];
  // only the settings given here: none of this shell's FNMESH_* leaks into the mesh
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FNMESH_')),
  );
  Object.assign(
    env,
    { FNMESH_LISTEN: `127.0.0.1:${port}`, FNMESH_OPS_LISTEN: `127.0.0.1:${opsPort}`, NO_COLOR: '1' },
    extraEnv,
  );
  let server: RunningNatsServer | undefined;
  if (broker === 'nats-server') {
    // the trust directory a user would keep, and a nats-server configured to trust it
    const own = await startTrustingNatsServer(dir);
    server = own.server;
    const trustDir = own.trustDir;
    env.FNMESH_NATS_URL = server.url;
    env.FNMESH_LOCAL_NATS_TRUST_DIR = trustDir;
  } else {
    env.FNMESH_BROKER_PORT = String(await freePort());
  }
  const cli = startCli(['local', dir], env);
  const output = (n = 60): string => cli.lines.slice(-n).join('\n');
  const waitLine: LocalMeshRun['waitLine'] = (re, what, from = 0, timeoutMs = 60_000) =>
    waitFor(
      () => {
        if (cli.child.exitCode !== null) throw new Error(`fnmesh local exited (${cli.child.exitCode})`);
        for (let i = from; i < cli.lines.length; i++) {
          const match = re.exec(cli.lines[i]!);
          if (match) return { index: i, match };
        }
        return undefined;
      },
      { timeoutMs, intervalMs: 25, what },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n--- fnmesh local's last output ---\n${output(40)}`);
    });
  const replica: LocalMeshRun['replica'] = (id, from = 0) => {
    for (let i = cli.lines.length - 1; i >= from; i--) {
      const m = READY.exec(cli.lines[i]!);
      if (m && m[1] === id) return { id, fnPid: Number(m[2]), scPid: Number(m[3]), ops: m[4]!, line: i };
    }
    return undefined;
  };
  const run: LocalMeshRun = {
    cli,
    gateway: `http://127.0.0.1:${port}`,
    gatewayOps: `http://127.0.0.1:${opsPort}`,
    replica,
    waitReady: async (id, from = 0, timeoutMs = 60_000) => {
      await waitLine(new RegExp(`\\b${id} ready \\(`), `${id} ready`, from, timeoutMs);
      return replica(id, from)!;
    },
    waitLine,
    output,
    async stop() {
      if (cli.child.exitCode === null && cli.child.signalCode === null) {
        cli.child.kill('SIGINT');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([cli.exit, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
        clearTimeout(timer);
        if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
        await cli.exit;
      }
      await server?.stop();
    },
  };
  try {
    await waitLine(/^curl /, 'the banner (the ready-to-paste curl line)');
  } catch (err) {
    await run.stop();
    throw err;
  }
  return run;
}
