/**
 * `fnmesh cluster` (`npm run cluster`): Kubernetes on one machine with no Docker, to try fnmesh as a cluster
 * user would. It starts
 *   - the control plane the tests use (etcd, kube-apiserver, controller-manager, scheduler; cluster/control-plane.ts),
 *     with the FunctionService CRD and the RBAC of deploy/rbac/ installed;
 *   - the fnmesh operator and the fnmesh gateway (with its embedded broker, or your NATS server with
 *     FNMESH_NATS_URL: cluster/nats-choice.ts; rules from the FunctionService objects), each as its own process with the ServiceAccount token its RBAC allows, not as admin;
 *   - NATS locked down as in `fnmesh local` (cluster/nats-trust.ts): a fresh trust chain per run, the broker
 *     in operator mode (no connection without a user JWT), the operator minting each FunctionService's user
 *     into the Secret its sidecars mount (FNMESH_NATS_AUTH=jwt), the gateway with its own user;
 *   - a node, `fnmesh-local`, whose pods are local processes (cluster/node-agent.ts): the operator's pod
 *     template runs as written — the sidecar from this build, the function from examples/ — each pod in its
 *     own network and mount namespaces with its volumes mounted (the sidecar's minted `.creds` among them),
 *     its sidecar reaching the broker at 127.0.0.1:4222 as in a cluster with NATS; Services, their names and
 *     the API server reachable inside pods, NodePort Services on 127.0.0.1:<nodePort> (printed as they open);
 *     persistentVolumeClaims of the default StorageClass `fnmesh-local` (installed by the node's local
 *     provisioner) as folders of the run dir, removed with it;
 * and prints the KUBECONFIG to export. Ctrl-C stops the pods (gracefully), then everything else.
 *
 * With `--helm` (cluster/helm-release.ts) no operator, gateway or broker runs on this machine: after the
 * control plane and the node it runs the real `helm install fnmesh charts/fnmesh -n fnmesh --create-namespace
 * --wait` (the gateway Service as a NodePort, the user's `--values`/`--set` after), so the chart's pods run on
 * the node with their own ServiceAccount tokens and Secrets, and prints the curls for the gateway's node port.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CRD_PATH } from '../common/crd-names';
import { ConfigError, errorMessage } from '../common/errors';
import { KUBECONFIG_VAR } from '../common/kube-access';
import { loadKubeAccess } from '../common/kubeconfig';
import type { MeshTrust } from '../common/nats-identity/trust-chain';
import { loadOrCreateTrustDir } from '../common/nats-identity/trust-dir';
import { readSettings, type Env } from '../common/config';
import { runMain } from '../common/run-main';
import { devToken, randomSecret } from '../common/process/dev-token';
import { humanLogger } from '../common/process/human-logger';
import { Prefixer } from '../common/process/log-prefix';
import { freePort, portProblem } from '../common/process/ports';
import { startReaper } from '../common/process/reaper-link';
import { repoRoot } from '../common/process/repo-root';
import { Supervisor, killAllChildren, setChildListener, type ChildListener } from '../common/process/supervisor';
import { fnmeshVersion } from '../common/process/version';
import { k8sTools, kubeconfigYaml, startControlPlane, type ControlPlane } from './control-plane';
import { BUILT_IN_IMAGES, loadImages, parseImageFlag } from './images';
import { clusterNatsChoice } from './nats-choice';
import { addNatsImage } from './nats-image';
import { buildNatsServer, natsServerBinary } from './nats-server-tool';
import { NATS_SERVER_VERSION } from '../common/nats-server-version';
import { prepareClusterNats } from './nats-trust';
import { NodeAgent, type EgressRoute } from './node-agent';
import {
  JWT_SECRET_KEY,
  JWT_SECRET_NAME,
  RELEASE,
  RELEASE_NAMESPACE,
  helmBinary,
  installArgs,
  runHelm,
} from './helm-release';
import type { NodePortRoute } from './service-routes';
import { CLUSTER_SETTINGS } from './settings';
import { GATEWAY_SETTINGS } from '../gateway/settings';

/** The node agent and the local images, for tests that run a node without the rest of `fnmesh cluster`. */
export { NodeAgent } from './node-agent';
export { loadImages } from './images';
/** The storage of `fnmesh cluster` and the official nats image, for those tests too. */
export { volumesDirOf } from './node-agent';
export { LOCAL_PROVISIONER, LOCAL_STORAGE_CLASS } from './local-storage-class';
export { addNatsImage } from './nats-image';
export { natsServerBinary } from './nats-server-tool';
/** helm's argv for the chart on this cluster, for tests that install it themselves. */
export { installArgs, RELEASE, RELEASE_NAMESPACE } from './helm-release';
export { inPodAddress } from './cluster-addresses';

export const NODE_NAME = 'fnmesh-local';
const SYSTEM_NS = 'fnmesh-system';
/** The broker's address inside every pod (relayed to the gateway's embedded broker). */
const POD_NATS_PORT = 4222;

export interface ClusterOptions {
  env: Env;
  /** `--image REPOSITORY=FOLDER` values. */
  images: string[];
  colour: boolean;
  write?: (text: string) => void;
  /** Told about every process group the pods start (the reaper's list). */
  groups?: ChildListener;
}

export interface RunningCluster {
  kubeconfig: string;
  gatewayUrl: string;
  controlPlane: ControlPlane;
  stop(): Promise<void>;
}

/**
 * What `fnmesh cluster` says when a node port opens or closes; for a gateway Service (its name ends in
 * `gateway`), the curl that calls the greeter example through it. Pure.
 */
export function nodePortLines(route: NodePortRoute, open: boolean): string[] {
  const url = `http://127.0.0.1:${route.nodePort}`;
  if (!open) return [`Service ${route.service} no longer has node port ${route.nodePort}`];
  const lines = [`Service ${route.service} port ${route.port.port} is reachable at ${url} (NodePort)`];
  if (/gateway$/.test(route.service))
    lines.push(
      `  curl -s -X POST ${url}/v1/api/default/functions/greeter/hello -H 'content-type: application/json' -d '{"params":{"name":"Ada"}}'`,
    );
  return lines;
}

/** Fails fast, naming the fix, when this machine cannot give pods their own network namespaces. */
function checkNamespaces(): void {
  const r = spawnSync('unshare', ['--mount', '--net', '--uts', 'true'], { encoding: 'utf8' });
  if (r.status !== 0) {
    const why = r.error ? r.error.message : r.stderr.trim();
    throw new ConfigError(
      `fnmesh cluster runs each pod in its own network, mount and UTS namespaces (unshare --mount --net --uts), which failed here: ${why}. ` +
        'Run it as root (or with CAP_SYS_ADMIN), or use `npm start` (fnmesh local), which needs no privileges',
    );
  }
  const ip = spawnSync('ip', ['-V'], { encoding: 'utf8' });
  if (ip.error)
    throw new ConfigError(
      "fnmesh cluster needs the `ip` command (Debian: apt-get install iproute2) to bring each pod's loopback up",
    );
  const nft = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  if (nft.error)
    throw new ConfigError(
      "fnmesh cluster needs the `nft` command (Debian: apt-get install nftables) to route Service and pod addresses inside each pod's own network namespace",
    );
}

async function serviceAccountKubeconfig(cp: ControlPlane, dir: string, account: string): Promise<string> {
  const r = await cp.request(`/api/v1/namespaces/${SYSTEM_NS}/serviceaccounts/${account}/token`, {
    method: 'POST',
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 7 * 24 * 3600 } },
  });
  const token = (r.body as { status?: { token?: string } }).status?.token;
  if (r.status !== 201 || !token)
    throw new Error(
      `cannot get a token for ServiceAccount ${SYSTEM_NS}/${account}: ${r.status} ${JSON.stringify(r.body)}`,
    );
  const file = path.join(dir, `${account}.kubeconfig`);
  writeFileSync(file, kubeconfigYaml(cp.server, cp.caFile, account, token), { mode: 0o600 });
  return file;
}

async function kubectlOk(cp: ControlPlane, args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

async function waitEstablished(cp: ControlPlane, deadlineMs: number): Promise<void> {
  for (;;) {
    const r = await cp.request(CRD_PATH);
    const conds = (r.body as { status?: { conditions?: { type: string; status: string }[] } }).status?.conditions ?? [];
    if (conds.some((c) => c.type === 'Established' && c.status === 'True')) return;
    if (Date.now() > deadlineMs) throw new Error('the FunctionService CRD did not become Established within 60 s');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function startCluster(options: ClusterOptions): Promise<RunningCluster> {
  const write = options.write ?? ((t: string) => void process.stdout.write(t));
  const prefixer = new Prefixer({ colour: options.colour, write });
  const say = (message: string): void => prefixer.line('cluster', 'cluster', message);
  const env = options.env;
  const root = repoRoot();

  const settings = readSettings(env, CLUSTER_SETTINGS);
  const { listen, opsListen, brokerPort, jwtSecret: jwtSecrets, logLevel } = settings;
  const natsChoice = clusterNatsChoice(env);
  checkNamespaces();
  // With --helm the chart runs the operator and the gateway in pods: nothing listens on this machine but node ports.
  const helmBin = settings.helm ? await helmBinary() : undefined;
  if (settings.helm)
    for (const f of settings.helmValues ?? [])
      if (!existsSync(f))
        throw new ConfigError(
          `${CLUSTER_SETTINGS.helmValues.env}: the values file ${f} does not exist: name a file of yours`,
        );
  if (!settings.helm && (settings.helmValues || settings.helmSet))
    throw new ConfigError(
      `${CLUSTER_SETTINGS.helmValues.env} and ${CLUSTER_SETTINGS.helmSet.env} (--values, --set) are values for the chart: add --helm (FNMESH_CLUSTER_HELM=true)`,
    );
  for (const [what, host, port, variable] of [
    ['the gateway', listen.host, listen.port, 'FNMESH_LISTEN=127.0.0.1:8081'],
    ["the gateway's ops listener", opsListen.host, opsListen.port, 'FNMESH_OPS_LISTEN=127.0.0.1:9092'],
    ['the broker', '127.0.0.1', brokerPort, 'FNMESH_BROKER_PORT=4223'],
  ] as const) {
    if (settings.helm || port === 0 || (what === 'the broker' && natsChoice.kind === 'external')) continue;
    const problem = await portProblem(host, port);
    if (problem)
      throw new ConfigError(
        `${what} cannot listen on ${host}:${port} (${problem}): stop what uses it, or choose another port, e.g. ${variable} npm run cluster`,
      );
  }
  const images = loadImages(root, [...BUILT_IN_IMAGES, ...options.images.map((v) => parseImageFlag(v, process.cwd()))]);
  const sandboxScript = path.join(root, 'dist', 'cluster', 'pod-sandbox.js');
  if (!existsSync(sandboxScript))
    throw new ConfigError(`${sandboxScript} is missing: build first (npm run build), or start with npm run cluster`);

  try {
    await k8sTools();
  } catch {
    say(
      'building the Kubernetes binaries once (kube-apiserver, controller-manager, scheduler, kubectl v1.35.4; several minutes on a fresh machine)...',
    );
    const built = spawnSync('bash', [path.join(root, 'scripts', 'k8s-tools.sh')], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    if (built.status !== 0) throw new Error('scripts/k8s-tools.sh failed (its messages are above)');
  }
  const tools = await k8sTools();
  // The official nats image (the chart's bundled NATS) runs the nats-server built from the Go module proxy.
  let natsServer = await natsServerBinary();
  if (!natsServer.built) {
    say(`building nats-server v${NATS_SERVER_VERSION} once, for the official nats image (about two minutes cold)...`);
    buildNatsServer();
    natsServer = await natsServerBinary();
  }

  // Short: the pods' Unix sockets live here (a socket path may not exceed 107 bytes).
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-cluster-'));
  mkdirSync(runDir, { recursive: true });
  // a Ctrl-C before startCluster returns (helm install --wait can take minutes) exits at once: the run dir too
  removeOnForcedExit = () => rmSync(runDir, { recursive: true, force: true });
  addNatsImage(images, {
    dir: path.join(runDir, 'images', 'nats'),
    binary: natsServer.path,
    version: NATS_SERVER_VERSION,
    hostPath: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
  });
  say('starting the control plane (etcd, kube-apiserver, controller-manager, scheduler)...');
  const cp = await startControlPlane({ kwokNode: false, parentDir: runDir });
  const children: Supervisor[] = [];
  let agent: NodeAgent | undefined;
  const stop = async (): Promise<void> => {
    say(
      settings.helm
        ? 'stopping: the pods first (gracefully), then the control plane'
        : 'stopping: the pods first (gracefully), then the operator and the gateway, then the control plane',
    );
    await agent?.stop(10_000).catch((err: unknown) => say(`stopping the pods failed: ${errorMessage(err)}`));
    await Promise.all(children.map((c) => c.stop()));
    await cp.stop();
    rmSync(runDir, { recursive: true, force: true });
  };
  const startAgent = async (egress: EgressRoute[]): Promise<NodeAgent> => {
    const nodeLog = humanLogger((line) => prefixer.line(NODE_NAME, 'node', line), logLevel === 'debug');
    const started = new NodeAgent({
      access: loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} }),
      nodeName: NODE_NAME,
      runDir,
      images,
      egress,
      sandboxScript,
      logger: nodeLog,
      groups: options.groups,
      onNodePort: (route, open) => {
        for (const l of nodePortLines(route, open)) say(l);
      },
      output: (() => {
        const splitters = new Map<string, ReturnType<Prefixer['splitter']>>();
        return (pod, container, _stream, chunk) => {
          const label = `${pod} ${container === 'fnmesh-sidecar' ? 'sidecar' : container}`;
          let s = splitters.get(label);
          if (!s) {
            s = prefixer.splitter(label, pod);
            splitters.set(label, s);
          }
          s.push(chunk);
        };
      })(),
    });
    agent = started;
    await started.start();
    return started;
  };
  const jwtSecret = jwtSecrets?.join(',') ?? randomSecret();
  const token = jwtSecrets ? undefined : devToken(jwtSecret);
  const kubectlDir = tools.kubeBinDir;
  const callLines = (gatewayUrl: string): string[] => {
    const out = [
      `  curl -s -X POST ${gatewayUrl}/v1/api/default/functions/greeter/hello -H 'content-type: application/json' -d '{"params":{"name":"Ada"}}'`,
    ];
    if (token)
      out.push(
        `  curl -s -X POST ${gatewayUrl}/v1/api/default/functions/greeter/whoami -H 'content-type: application/json' -H 'authorization: Bearer ${token}' -d '{}'`,
      );
    return out;
  };
  try {
    if (helmBin) {
      const gatewayUrl = await installChart(cp, {
        helmBin,
        chartDir: path.join(root, 'charts', 'fnmesh'),
        valuesFiles: settings.helmValues ?? [],
        set: settings.helmSet,
        jwtSecret,
        startAgent: () => startAgent([]),
        say,
        helmLine: (l) => prefixer.line('helm', 'helm', l),
      });
      const lines = [
        '',
        `fnmesh cluster is up: Kubernetes v1.35.4 at ${cp.server}, node ${NODE_NAME} (pods run as local processes),`,
        `the chart installed as release ${RELEASE} in namespace ${RELEASE_NAMESPACE} (helm install --wait: every pod Ready), its gateway Service at ${gatewayUrl} (NodePort).`,
        '',
        'In another terminal:',
        `  export KUBECONFIG=${cp.kubeconfig}`,
        `  export PATH=${kubectlDir}:${path.dirname(helmBin)}:$PATH     # kubectl v1.35.4, matching the API server, and helm`,
        `  kubectl get pods -n ${RELEASE_NAMESPACE}`,
        '  kubectl apply -f examples/',
        '  kubectl get fsvc -w                  # until greeter, text and authz are Ready',
        ...callLines(gatewayUrl),
        `  helm test ${RELEASE} -n ${RELEASE_NAMESPACE}`,
        '',
        'Ctrl-C stops the pods and the control plane.',
        '',
      ];
      for (const l of lines) say(l);
      return { kubeconfig: cp.kubeconfig, gatewayUrl, controlPlane: cp, stop };
    }
    await kubectlOk(cp, ['create', 'namespace', SYSTEM_NS]);
    await kubectlOk(cp, ['apply', '-f', path.join(root, 'crds'), '-f', path.join(root, 'deploy', 'rbac')]);
    await waitEstablished(cp, Date.now() + 60_000);
    const operatorConfig = await serviceAccountKubeconfig(cp, cp.dir, 'fnmesh-operator');
    const gatewayConfig = await serviceAccountKubeconfig(cp, cp.dir, 'fnmesh-gateway');
    let external: { url: string; trust: MeshTrust } | undefined;
    if (natsChoice.kind === 'external') {
      const loaded = await loadOrCreateTrustDir(natsChoice.trustDir, CLUSTER_SETTINGS.natsTrustDir.env);
      say(
        loaded.created
          ? `created a NATS trust chain in ${natsChoice.trustDir}: include ${loaded.serverConfigFile} in your NATS server's configuration and restart it; the gateway and the sidecars connect once it does`
          : loaded.upgraded
            ? `added a system account to the NATS trust chain in ${natsChoice.trustDir} and wrote ${loaded.serverConfigFile} again: the mesh works without it; restart your NATS server with it to have JetStream under this trust chain`
            : `NATS users minted from the trust chain in ${natsChoice.trustDir} (server config: ${loaded.serverConfigFile})`,
      );
      external = { url: natsChoice.url, trust: loaded.trust };
    }
    const nats = await prepareClusterNats(
      path.join(runDir, 'nats'),
      SYSTEM_NS,
      GATEWAY_SETTINGS.maxTimeoutMs.read({}), // the gateway runs with its default (its env has no FNMESH_ but ours)
      external,
    );
    const created = await cp.request(`/api/v1/namespaces/${SYSTEM_NS}/secrets`, {
      method: 'POST',
      body: nats.trustSecret,
    });
    if (created.status !== 201)
      throw new Error(`cannot create the NATS trust Secret: ${created.status} ${JSON.stringify(created.body)}`);

    const actualBrokerPort = brokerPort === 0 ? await freePort() : brokerPort;
    const natsTarget =
      natsChoice.kind === 'external'
        ? { host: natsChoice.host, port: natsChoice.port }
        : { host: '127.0.0.1', port: actualBrokerPort };
    const fnmeshBin = path.join(root, 'bin', 'fnmesh.js');
    const childEnv = (own: Record<string, string>): NodeJS.ProcessEnv => {
      const out: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(env))
        if (v !== undefined && !k.startsWith('FNMESH_') && k !== 'KUBECONFIG') out[k] = v;
      out.FNMESH_LOG_LEVEL = logLevel;
      return { ...out, ...own };
    };
    const supervise = (label: string, args: string[], own: Record<string, string>): Supervisor => {
      const s = new Supervisor({
        label,
        command: process.execPath,
        args: [fnmeshBin, ...args],
        cwd: root,
        env: childEnv(own),
        stdout: prefixer.splitter(label, label),
        stderr: prefixer.splitter(label, label),
        report: (_level, message) => say(message),
        graceMs: 10_000,
      });
      children.push(s);
      s.start();
      return s;
    };
    const gatewayUrl = `http://${listen.host === '0.0.0.0' ? '127.0.0.1' : listen.host}:${listen.port}`;
    const opsUrl = `http://${opsListen.host === '0.0.0.0' ? '127.0.0.1' : opsListen.host}:${opsListen.port}`;
    supervise('gateway', ['gateway'], {
      FNMESH_LISTEN: `${listen.host}:${listen.port}`,
      FNMESH_OPS_LISTEN: `${opsListen.host}:${opsListen.port}`,
      ...(natsChoice.kind === 'embedded'
        ? { FNMESH_BROKER_HOST: '127.0.0.1', FNMESH_BROKER_PORT: String(actualBrokerPort) }
        : {}),
      FNMESH_RULE_SOURCE: 'kubernetes',
      [KUBECONFIG_VAR]: gatewayConfig,
      FNMESH_JWT_SECRET: jwtSecret,
      ...(nats.gatewayEnv as Record<string, string>),
    });
    const operatorPort = await freePort();
    supervise('operator', ['operator'], {
      [KUBECONFIG_VAR]: operatorConfig,
      FNMESH_OPERATOR_LISTEN: `127.0.0.1:${operatorPort}`,
      FNMESH_SIDECAR_IMAGE: `${BUILT_IN_IMAGES[0]!.repository}:${fnmeshVersion()}`,
      FNMESH_SIDECAR_NATS_URL: `nats://127.0.0.1:${POD_NATS_PORT}`,
      FNMESH_LEASE_NAMESPACE: SYSTEM_NS,
      // Each FunctionService's user JWT minted into a Secret that the node agent mounts into its sidecars.
      ...(nats.operatorEnv as Record<string, string>),
    });

    await startAgent([{ port: POD_NATS_PORT, host: natsTarget.host, targetPort: natsTarget.port }]);

    const lines = [
      '',
      `fnmesh cluster is up: Kubernetes v1.35.4 at ${cp.server}, node ${NODE_NAME} (pods run as local processes),`,
      `the fnmesh operator, and the gateway at ${gatewayUrl} (${natsChoice.kind === 'external' ? `your NATS at ${natsChoice.url}` : `embedded broker on 127.0.0.1:${actualBrokerPort}`}, JWT auth: every part its own NATS user; ops, /v1/services and /metrics: ${opsUrl}).`,
      '',
      'In another terminal:',
      `  export KUBECONFIG=${cp.kubeconfig}`,
      `  export PATH=${kubectlDir}:$PATH     # kubectl v1.35.4, matching the API server`,
      '  kubectl apply -f crds/ -f examples/',
      '  kubectl get fsvc -w                  # until greeter, text and authz are Ready',
      ...callLines(gatewayUrl),
    ];
    lines.push('', 'Ctrl-C stops the pods, the operator, the gateway and the control plane.', '');
    for (const l of lines) say(l);
    return { kubeconfig: cp.kubeconfig, gatewayUrl, controlPlane: cp, stop };
  } catch (err) {
    agent?.killAll();
    await Promise.all(children.map((c) => c.stop()));
    await cp.stop();
    rmSync(runDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * `--helm`: the release namespace with the gateway's HS256 Secret, the node agent, then `helm install --wait`;
 * resolves with the gateway Service's node port URL.
 */
async function installChart(
  cp: ControlPlane,
  o: {
    helmBin: string;
    chartDir: string;
    valuesFiles: string[];
    set: string | undefined;
    jwtSecret: string;
    startAgent: () => Promise<NodeAgent>;
    say: (message: string) => void;
    helmLine: (line: string) => void;
  },
): Promise<string> {
  await kubectlOk(cp, ['create', 'namespace', RELEASE_NAMESPACE]);
  await kubectlOk(cp, [
    'create',
    'secret',
    'generic',
    JWT_SECRET_NAME,
    '-n',
    RELEASE_NAMESPACE,
    `--from-literal=${JWT_SECRET_KEY}=${o.jwtSecret}`,
  ]);
  await o.startAgent();
  const args = installArgs(o.chartDir, o.valuesFiles, o.set);
  o.say(`helm ${args.join(' ')} (until every pod of the chart is Ready)...`);
  const started = Date.now();
  const r = await runHelm(o.helmBin, args, cp.kubeconfig, o.helmLine);
  if (r.code !== 0) {
    const pods = await cp.kubectl(['get', 'pods', '-n', RELEASE_NAMESPACE, '-o', 'wide']);
    throw new Error(
      `helm install failed (exit ${r.code}): ${r.output.trim()}\nthe release's pods:\n${pods.stdout}${pods.stderr}` +
        'fix what helm and the pods above say (their output and the node agent reasons are printed above), then start again',
    );
  }
  o.say(`helm install --wait: every pod of the chart Ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const svc = await cp.request(`/api/v1/namespaces/${RELEASE_NAMESPACE}/services`);
  const items = (svc.body as { items?: ServiceItem[] }).items ?? [];
  const nodePort = gatewayNodePort(items);
  if (nodePort === undefined)
    throw new ConfigError(
      `the chart's gateway Service has no node port (${items.map((s) => `${s.metadata.name}: ${s.spec.type}`).join(', ')}): leave gateway.service.type NodePort (fnmesh cluster --helm sets it) or LoadBalancer`,
    );
  return `http://127.0.0.1:${nodePort}`;
}

interface ServiceItem {
  metadata: { name: string };
  spec: { type?: string; ports?: { name?: string; nodePort?: number }[] };
}

/** The node port of the http port of the Service whose name ends in `gateway`. Pure. */
export function gatewayNodePort(services: readonly ServiceItem[]): number | undefined {
  const gw = services.find((s) => /gateway$/.test(s.metadata.name));
  return gw?.spec.ports?.find((p) => p.name === 'http')?.nodePort ?? gw?.spec.ports?.[0]?.nodePort;
}

/** Removes the run's folder when `fnmesh cluster` is stopped before it has started (runMain's forced exit). */
let removeOnForcedExit: (() => void) | undefined;

/** Runs `fnmesh cluster` until SIGINT/SIGTERM/SIGHUP. */
export function runCluster(env: Env, images: string[]): Promise<RunningCluster> {
  return runMain(
    'fnmesh cluster',
    async () => {
      readSettings(env, CLUSTER_SETTINGS); // every setting checked before anything starts
      const groups = startReaper();
      setChildListener(groups);
      process.on('exit', () => killAllChildren('SIGKILL'));
      return startCluster({ env, images, groups, colour: Boolean(process.stdout.isTTY) && !env.NO_COLOR });
    },
    {
      signals: ['SIGINT', 'SIGTERM', 'SIGHUP'],
      onForcedExit: () => {
        killAllChildren('SIGKILL');
        removeOnForcedExit?.();
      },
    },
  );
}
