/**
 * `fnmesh cluster` as a user runs it (the built CLI, as a process) for a suite that shares one control plane:
 * started once, its KUBECONFIG and kubectl read from what it prints, and its pods' container processes found
 * by the pid in their container status (`fnmesh://<pod>/<container>/<pid>`). On the gateway's embedded broker,
 * or on a real nats-server trusting a trust directory written for it (FNMESH_NATS_URL +
 * FNMESH_CLUSTER_NATS_TRUST_DIR), as with `fnmesh local` (test/helpers/local-mesh.ts's LOCAL_BROKERS).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runKubectl, type KubectlResult } from '../../cluster/control-plane';
import { ROOT, startCli, type CliProcess } from './cli-process';
import type { LocalBroker } from './local-mesh';
import type { RunningNatsServer } from './nats-server';
import { freePort } from './ports';
import { startTrustingNatsServer } from './trusting-nats-server';
import { waitFor } from './wait';

export interface ContainerStatus {
  name: string;
  ready: boolean;
  restartCount: number;
  containerID?: string;
  state?: { running?: unknown };
}

export interface Pod {
  metadata: { name: string; uid: string };
  status?: {
    conditions?: { type: string; status: string }[];
    containerStatuses?: ContainerStatus[];
    initContainerStatuses?: ContainerStatus[];
  };
}

export interface ClusterRun {
  cli: CliProcess;
  /** The admin kubeconfig of the cluster (for helm). */
  kubeconfig: string;
  gateway: string;
  /** The gateway's ops listener (GET /v1/services, /metrics). */
  gatewayOps: string;
  kubectl(args: string[], stdin?: string): Promise<KubectlResult>;
  kubectlJson<T>(args: string[]): Promise<T>;
  pods(service: string): Promise<Pod[]>;
  output(lines?: number): string;
  stop(): Promise<void>;
}

export const isReady = (p: Pod): boolean =>
  (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** The process id of a container, from its status; undefined while it has none (not started, restarting). */
export function containerPid(pod: Pod, container: string): number | undefined {
  const s = pod.status?.containerStatuses?.find((c) => c.name === container);
  const pid = Number(s?.containerID?.split('/').pop());
  return s?.state?.running && Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * `dir` holds the trust directory when `broker` is nats-server. `extraArgs` go to `fnmesh cluster` (such as
 * `--helm --values FILE`: then `gateway` is the chart's gateway Service at its node port, and `gatewayOps` is
 * unset: the gateway's ops port is inside its pods).
 */
export async function startClusterCli(
  broker: LocalBroker = 'embedded broker',
  dir?: string,
  extraArgs: string[] = [],
): Promise<ClusterRun> {
  if (!existsSync(path.join(ROOT, 'dist', 'cluster', 'pod-sandbox.js')))
    throw new Error('dist/ is missing: run `npm run build`');
  const port = await freePort();
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('FNMESH_') && k !== 'KUBECONFIG'),
  );
  const opsPort = await freePort();
  Object.assign(env, {
    FNMESH_LISTEN: `127.0.0.1:${port}`,
    FNMESH_OPS_LISTEN: `127.0.0.1:${opsPort}`,
    NO_COLOR: '1',
  });
  let server: RunningNatsServer | undefined;
  if (broker === 'nats-server') {
    if (!dir) throw new Error('startClusterCli on nats-server needs a directory for the trust directory');
    const own = await startTrustingNatsServer(dir);
    server = own.server;
    env.FNMESH_NATS_URL = server.url;
    env.FNMESH_CLUSTER_NATS_TRUST_DIR = own.trustDir;
  } else {
    env.FNMESH_BROKER_PORT = '0';
  }
  const cli = startCli(['cluster', ...extraArgs], env);
  const output = (n = 60): string => cli.lines.slice(-n).join('\n');
  const stop = async (): Promise<void> => {
    if (cli.child.exitCode === null && cli.child.signalCode === null) {
      cli.child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([cli.exit, new Promise((r) => (timer = setTimeout(r, 60_000)))]);
      clearTimeout(timer);
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await cli.exit;
    }
    await server?.stop();
  };
  try {
    await waitFor(
      () => {
        if (cli.child.exitCode !== null) throw new Error(`fnmesh cluster exited (${cli.child.exitCode})`);
        return cli.lines.some((l) => l.includes('Ctrl-C stops'));
      },
      // with --helm it also waits for helm install --wait (every pod of the chart Ready)
      { timeoutMs: 420_000, intervalMs: 50, what: 'fnmesh cluster to print its instructions' },
    );
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  const printed = cli.lines.join('\n');
  const kubeconfig = /export KUBECONFIG=(\S+)/.exec(printed)![1]!;
  const kubectlBin = path.join(/export PATH=([^:\s]+):/.exec(printed)![1]!, 'kubectl');
  const kubectl = (args: string[], stdin?: string): Promise<KubectlResult> =>
    runKubectl(kubectlBin, args, stdin, { ...process.env, KUBECONFIG: kubeconfig });
  const kubectlJson = async <T>(args: string[]): Promise<T> => {
    const r = await kubectl([...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  const chartGateway = /its gateway Service at (http:\/\/127\.0\.0\.1:\d+)/.exec(printed)?.[1];
  return {
    cli,
    kubeconfig,
    gateway: chartGateway ?? `http://127.0.0.1:${port}`,
    gatewayOps: `http://127.0.0.1:${opsPort}`,
    kubectl,
    kubectlJson,
    pods: async (service) =>
      (await kubectlJson<{ items: Pod[] }>(['get', 'pods', '-l', `fnmesh.io/service=${service}`])).items,
    output,
    stop,
  };
}
