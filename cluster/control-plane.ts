/**
 * A real Kubernetes control plane on one machine: etcd (Debian's etcd-server), kube-apiserver,
 * kube-controller-manager and kube-scheduler (built by scripts/k8s-tools.sh from k8s.io/kubernetes v1.35.4),
 * and (unless `kwokNode: false`) kwok simulating one node, so that pods are scheduled and become Running and
 * Ready without a kubelet. The tests start one per test file; `fnmesh cluster` starts one without kwok and
 * runs its pods as local processes (cluster/node-agent.ts). Everything listens on free loopback ports and
 * lives in a per-run temporary directory.
 *
 *   const cp = await startControlPlane();   // in beforeAll (allow ~60 s on a busy machine)
 *   await cp.kubectl(['get', 'nodes']);
 *   await cp.stop();                         // in afterAll
 *
 * Auth is a token file: `adminToken` is in system:masters; the controller-manager, scheduler and kwok each
 * have their own token (also system:masters) so that their requests can be told apart. Set
 * FNMESH_KEEP_CONTROL_PLANE=1 to keep the directory (logs, kubeconfig) after stop().
 */
import { spawn, execFile } from 'node:child_process';
import { randomBytes, generateKeyPair } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Agent, fetch as undiciFetch } from 'undici';
import { freePort } from '../common/process/ports';
import { repoRoot } from '../common/process/repo-root';
import { Supervisor } from '../common/process/supervisor';

export interface ControlPlaneOptions {
  /** --kube-api-qps of the controller-manager and scheduler (burst is twice this). Default 100. */
  apiQps?: number;
  extraApiServerFlags?: string[];
  /** Start kwok with one simulated node, `kwok-node-0` (default true). */
  kwokNode?: boolean;
  /** Parent of the per-run directory (default the system's temporary directory). */
  parentDir?: string;
}

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ControlPlane {
  /** https://127.0.0.1:port */
  server: string;
  /** Path to an admin kubeconfig (token auth, verifies the API server's self-signed certificate). */
  kubeconfig: string;
  adminToken: string;
  /** The API server's self-signed serving certificate (with its CA), PEM. */
  caFile: string;
  dir: string;
  /** How long startControlPlane took, in milliseconds. */
  startMs: number;
  /** etcd's client URL (http://127.0.0.1:port): its v3 JSON gateway serves /v3/kv/range, /v3/kv/compaction. */
  etcdUrl: string;
  /** Runs the kubectl built with the control plane against it as admin; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** A request to the API server (default: as admin); `body` objects are sent as JSON. */
  request(
    apiPath: string,
    init?: { method?: string; body?: unknown; token?: string; contentType?: string },
  ): Promise<{ status: number; body: unknown }>;
  /** Stops the API server (SIGTERM, SIGKILL after 1 s) and starts it again on the same port; waits for /readyz. */
  restartApiServer(): Promise<void>;
  stop(): Promise<void>;
}

export interface K8sTools {
  kubeBinDir: string;
  kwokBin: string;
  kwokStages: string;
  etcdBin: string;
}

const toolsScript = path.join(repoRoot(), 'scripts', 'k8s-tools.sh');
const KUBE_BINS = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kubectl'];

/** Paths of the tools, from `scripts/k8s-tools.sh --print-env`; throws with the fix if any is missing. */
export async function k8sTools(): Promise<K8sTools> {
  const { stdout } = await promisify(execFile)('bash', [toolsScript, '--print-env']);
  const env = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) env.set(line.slice(0, i), line.slice(i + 1));
  }
  const tools: K8sTools = {
    kubeBinDir: env.get('KUBE_BIN_DIR') ?? '',
    kwokBin: env.get('KWOK_BIN') ?? '',
    kwokStages: env.get('KWOK_STAGES') ?? '',
    etcdBin: env.get('ETCD_BIN') ?? '',
  };
  const needed = [
    ...KUBE_BINS.map((b) => path.join(tools.kubeBinDir, b)),
    tools.kwokBin,
    tools.kwokStages,
    tools.etcdBin,
  ];
  const missing = needed.filter((p) => !p || !existsSync(p));
  if (missing.length) {
    throw new Error(
      `the Kubernetes test tools are missing (${missing.join(', ')}); build them once with: bash scripts/k8s-tools.sh`,
    );
  }
  return tools;
}

/**
 * etcd 3.4 cannot serve watch-progress requests, so this API server cannot serve "watch-list" (streaming
 * list) watches, which client-go 1.35+ asks for by default. With the API server's WatchList gate on, such a
 * watch is accepted and then ended with an error, and the client (kwok, whose gate cannot be set) retries
 * with back-off: pods took seconds to become Ready, tens of seconds after an API server restart. With the
 * gate off, the API server refuses the request at once and every client falls back to list+watch. The
 * client-side gate is turned off too, by flag where a binary has one and by environment otherwise.
 */
const childEnv = { ...process.env, KUBE_FEATURE_WatchListClient: 'false' };
const noWatchList = '--feature-gates=WatchListClient=false';
const apiServerNoWatchList = '--feature-gates=WatchList=false,WatchListClient=false';

/** A long-running child whose output goes to `<dir>/<name>.log`; it is not restarted when it exits. */
class Proc {
  private readonly supervisor: Supervisor;
  private started = false;
  readonly log: string;

  constructor(
    readonly name: string,
    readonly bin: string,
    readonly args: string[],
    dir: string,
  ) {
    this.log = path.join(dir, `${name}.log`);
    this.supervisor = new Supervisor({
      label: name,
      command: bin,
      args,
      cwd: process.cwd(),
      env: childEnv,
      logFile: this.log,
      restart: false,
      // What the supervisor says about the process (started, could not start, exited) goes to its log too.
      report: (_level, message) => writeFileSync(this.log, `${message}\n`, { flag: 'a' }),
      graceMs: 3_000,
      // In the caller's process group, as before: a Ctrl-C of a test run or a bench stops etcd and the API
      // server too, even where no reaper runs (only fnmesh cluster starts one).
      detached: false,
    });
  }

  start(): void {
    this.started = true;
    this.supervisor.start();
  }

  get running(): boolean {
    return this.supervisor.running;
  }

  tail(lines = 30): string {
    try {
      return readFileSync(this.log, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** Throws (with the end of the log) if the process has exited. */
  check(): void {
    if (!this.started) throw new Error(`${this.name} was not started`);
    const exit = this.supervisor.lastExit;
    if (exit && !this.supervisor.running) {
      const how = exit.signal ? `signal ${exit.signal}` : `code ${String(exit.code)}`;
      throw new Error(`${this.name} exited early (${how}); the end of ${this.log}:\n${this.tail()}`);
    }
  }

  async stop(graceMs = 3_000): Promise<void> {
    await this.supervisor.stop('SIGTERM', graceMs);
  }

  kill(): void {
    this.supervisor.kill();
  }
}

/** Every process started by any control plane in this Node process, killed if Node exits without stop(). */
const live = new Set<Proc>();
let exitHookInstalled = false;
function track(p: Proc): void {
  live.add(p);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const q of live) q.kill();
    });
  }
}

/** A kubeconfig for `user` with a bearer token, verifying the API server with `caFile`. Pure. */
export function kubeconfigYaml(server: string, caFile: string, user: string, token: string): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: fnmesh-test',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority: ${caFile}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: fnmesh-test',
    '  context:',
    '    cluster: fnmesh-test',
    `    user: ${user}`,
    'current-context: fnmesh-test',
    '',
  ].join('\n');
}

interface NodeJson {
  spec?: { taints?: unknown[] };
  status?: { conditions?: { type: string; status: string }[] };
}

const fakeNode = `apiVersion: v1
kind: Node
metadata:
  name: kwok-node-0
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    type: kwok
    kubernetes.io/arch: amd64
    kubernetes.io/os: linux
    kubernetes.io/hostname: kwok-node-0
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
status:
  allocatable:
    cpu: "32"
    memory: 256Gi
    pods: "110"
  capacity:
    cpu: "32"
    memory: 256Gi
    pods: "110"
  nodeInfo:
    architecture: amd64
    operatingSystem: linux
    kubeletVersion: fake
    kubeProxyVersion: fake
`;

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const tools = await k8sTools();
  try {
    return await startOnce(tools, options);
  } catch (err) {
    // The free ports are picked, released, then bound by the processes: another test may take one between.
    if (!/address already in use/.test(String(err))) throw err;
    return startOnce(tools, options);
  }
}

async function startOnce(tools: K8sTools, options: ControlPlaneOptions): Promise<ControlPlane> {
  const started = Date.now();
  const withKwok = options.kwokNode ?? true;
  const dir = mkdtempSync(path.join(options.parentDir ?? os.tmpdir(), 'fnmesh-k8s-'));
  // etcd 3.4 has no --unsafe-no-fsync: keep its data in memory when /dev/shm exists.
  const etcdDir = existsSync('/dev/shm') ? mkdtempSync('/dev/shm/fnmesh-etcd-') : path.join(dir, 'etcd');
  const certDir = path.join(dir, 'pki');
  const caFile = path.join(certDir, 'apiserver.crt');
  const procs: Proc[] = [];
  let stopped = false;

  const stopAll = async (): Promise<void> => {
    for (const p of [...procs].reverse()) {
      await p.stop();
      live.delete(p);
    }
    if (!process.env.FNMESH_KEEP_CONTROL_PLANE) rmSync(dir, { recursive: true, force: true });
    if (etcdDir !== path.join(dir, 'etcd')) rmSync(etcdDir, { recursive: true, force: true });
  };

  try {
    const ports = (await uniquePorts(5)) as [number, number, number, number, number];
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort] = ports;
    const server = `https://127.0.0.1:${apiPort}`;

    // Tokens: token,user,uid,"groups".
    const token = (): string => randomBytes(24).toString('hex');
    const ids = { admin: token(), kcm: token(), scheduler: token(), kwok: token() };
    writeFileSync(
      path.join(dir, 'tokens.csv'),
      [
        `${ids.admin},admin,admin,"system:masters"`,
        `${ids.kcm},system:kube-controller-manager,kcm,"system:masters"`,
        `${ids.scheduler},system:kube-scheduler,scheduler,"system:masters"`,
        `${ids.kwok},kwok,kwok,"system:masters"`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const kubeconfig = path.join(dir, 'admin.kubeconfig');
    const componentConfig = (name: keyof typeof ids): string => {
      const file = path.join(dir, `${name}.kubeconfig`);
      writeFileSync(file, kubeconfigYaml(server, caFile, name, ids[name]), { mode: 0o600 });
      return file;
    };
    componentConfig('admin');
    const kcmConfig = componentConfig('kcm');
    const schedConfig = componentConfig('scheduler');
    const kwokConfig = componentConfig('kwok');

    // The service-account signing key pair.
    const { publicKey, privateKey } = await promisify(generateKeyPair)('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    const saPub = path.join(dir, 'sa.pub');
    const saKey = path.join(dir, 'sa.key');
    writeFileSync(saPub, publicKey);
    writeFileSync(saKey, privateKey, { mode: 0o600 });

    const add = (name: string, bin: string, args: string[]): Proc => {
      const p = new Proc(name, bin, args, dir);
      procs.push(p);
      track(p);
      p.start();
      return p;
    };

    const etcd = add('etcd', tools.etcdBin, [
      '--name=fnmesh-test',
      `--data-dir=${etcdDir}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=fnmesh-test=http://127.0.0.1:${etcdPeer}`,
      '--log-level=warn',
      '--logger=zap',
    ]);
    await until('etcd /health', 30_000, [etcd], async () => {
      const r = await undiciFetch(`http://127.0.0.1:${etcdClient}/health`);
      return r.ok;
    });

    const apiArgs = [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      `--secure-port=${apiPort}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      // Endpoints may not hold loopback addresses: do not reconcile the `kubernetes` Service's endpoints.
      '--endpoint-reconciler-type=none',
      `--cert-dir=${certDir}`,
      `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc',
      `--service-account-key-file=${saPub}`,
      `--service-account-signing-key-file=${saKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      apiServerNoWatchList,
      ...(options.extraApiServerFlags ?? []),
    ];
    let apiserver = add('kube-apiserver', path.join(tools.kubeBinDir, 'kube-apiserver'), apiArgs);

    let dispatcher: Agent | undefined;
    const agent = (): Agent => {
      dispatcher ??= new Agent({ connect: { ca: readFileSync(caFile), rejectUnauthorized: true } });
      return dispatcher;
    };
    const request: ControlPlane['request'] = async (apiPath, init = {}) => {
      const body =
        init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
      const headers: Record<string, string> = { authorization: `Bearer ${init.token ?? ids.admin}` };
      if (body !== undefined) headers['content-type'] = init.contentType ?? 'application/json';
      const res = await undiciFetch(`${server}${apiPath}`, {
        method: init.method ?? 'GET',
        headers,
        body,
        dispatcher: agent(),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // not JSON (e.g. /readyz says "ok")
      }
      return { status: res.status, body: parsed };
    };

    const waitApiReady = async (): Promise<void> => {
      await until(`kube-apiserver ${server}/readyz`, 60_000, [etcd, apiserver], async () => {
        if (!existsSync(caFile)) return false;
        return (await request('/readyz')).status === 200;
      });
    };
    await waitApiReady();

    const qps = options.apiQps ?? 100;
    const rate = [`--kube-api-qps=${qps}`, `--kube-api-burst=${qps * 2}`];
    const delegation = (cfg: string): string[] => [
      `--kubeconfig=${cfg}`,
      `--authentication-kubeconfig=${cfg}`,
      `--authorization-kubeconfig=${cfg}`,
      // No client CA or request-header config to look up in kube-system: this API server has none.
      '--authentication-skip-lookup=true',
      '--bind-address=127.0.0.1',
      '--leader-elect=false',
      noWatchList,
    ];
    add('kube-controller-manager', path.join(tools.kubeBinDir, 'kube-controller-manager'), [
      ...delegation(kcmConfig),
      `--secure-port=${kcmPort}`,
      `--service-account-private-key-file=${saKey}`,
      `--root-ca-file=${caFile}`,
      '--use-service-account-credentials=false',
      '--controllers=*',
      '--service-cluster-ip-range=10.96.0.0/16',
      // kwok's heartbeat stage renews the node every 20-45 s; on a loaded machine that can pass the default
      // 50 s grace period and taint the node not-ready mid-test.
      '--node-monitor-grace-period=5m',
      ...rate,
    ]);
    add('kube-scheduler', path.join(tools.kubeBinDir, 'kube-scheduler'), [
      ...delegation(schedConfig),
      `--secure-port=${schedPort}`,
      ...rate,
    ]);
    if (withKwok)
      add('kwok', tools.kwokBin, [
        `--kubeconfig=${kwokConfig}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--manage-nodes-with-label-selector=',
        '--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom',
        '--disregard-status-with-label-selector=',
        '--cidr=10.0.0.1/24',
        '--node-ip=10.0.0.1',
        '--node-lease-duration-seconds=40',
        ...stageFiles(tools.kwokStages).map((f) => `--config=${f}`),
      ]);

    const kubectl = (args: string[], input?: string): Promise<KubectlResult> =>
      runKubectl(path.join(tools.kubeBinDir, 'kubectl'), ['--kubeconfig', kubeconfig, ...args], input);

    if (withKwok) {
      const applied = await kubectl(['apply', '-f', '-'], fakeNode);
      if (applied.code !== 0) throw new Error(`cannot create the kwok node: ${applied.stderr}`);
    }
    // Ready when: the controller-manager made the default ServiceAccount (pods need it to be admitted), the
    // scheduler is healthy, and (with kwok) kwok has made the node Ready.
    const insecure = new Agent({ connect: { rejectUnauthorized: false } });
    await until('controller-manager, scheduler and the kwok node to be ready', 60_000, procs, async () => {
      const sa = await request('/api/v1/namespaces/default/serviceaccounts/default');
      if (sa.status !== 200) return false;
      if (withKwok && !(await kwokNodeReady())) return false;
      const healthy = async (port: number): Promise<boolean> => {
        // Their serving certificates are self-signed in memory: nothing to verify them against.
        const r = await undiciFetch(`https://127.0.0.1:${port}/healthz`, { dispatcher: insecure }).catch(
          () => undefined,
        );
        return r?.status === 200;
      };
      return (await healthy(kcmPort)) && (await healthy(schedPort));
    }).finally(() => insecure.close());
    async function kwokNodeReady(): Promise<boolean> {
      const node = await request('/api/v1/nodes/kwok-node-0');
      const n = node.body as NodeJson;
      if (!n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return false;
      // The node lifecycle controller taints a node not-ready until it has seen it Ready.
      return !n.spec?.taints?.length;
    }

    const startMs = Date.now() - started;
    return {
      server,
      kubeconfig,
      adminToken: ids.admin,
      caFile,
      dir,
      startMs,
      etcdUrl: `http://127.0.0.1:${etcdClient}`,
      kubectl,
      request,
      async restartApiServer() {
        // SIGTERM, then SIGKILL after 1 s: a graceful kube-apiserver waits for its open watches (up to the
        // 60 s request timeout) and, while it is down, clients back off ever longer before they reconnect.
        await apiserver.stop(1_000);
        const i = procs.indexOf(apiserver);
        live.delete(apiserver);
        apiserver = new Proc(apiserver.name, apiserver.bin, apiserver.args, dir);
        procs[i] = apiserver;
        track(apiserver);
        apiserver.start();
        await waitApiReady();
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        await dispatcher?.close();
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll().catch(() => undefined);
    throw err;
  }
}

/**
 * Polls `ready` until it says true; fails at once if one of `procs` exits (with the end of its log), and at
 * the deadline with the end of each process's log.
 */
async function until(what: string, timeoutMs: number, procs: Proc[], ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    for (const p of procs) p.check();
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${String(lastError)})` : '';
      const logs = procs.map((p) => `--- the end of ${p.log}:\n${p.tail(10)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function stageFiles(dir: string): string[] {
  const names = ['node-initialize', 'node-heartbeat', 'pod-ready', 'pod-complete', 'pod-delete'];
  return names.map((n) => path.join(dir, `${n}.yaml`));
}

async function uniquePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Runs a kubectl binary; never throws on a non-zero exit. */
export function runKubectl(
  bin: string,
  args: string[],
  input?: string,
  env?: NodeJS.ProcessEnv,
): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(env ? { env } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout, stderr, code: code ?? 1 }));
    child.stdin.end(input ?? '');
  });
}
