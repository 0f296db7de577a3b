/**
 * The node agent of `fnmesh cluster`: a small kubelet whose pods are local processes. It registers a Node,
 * keeps its Lease renewed, watches the pods bound to it, runs each one (cluster/pod-runner.ts: its own
 * network and mount namespaces, its volumes mounted at each container's volumeMounts — cluster/pod-volumes.ts,
 * refreshed while it runs —, the pod spec's command, args, env and ports, probes, restarts, preStop hooks) and
 * reports the pod's status the way a kubelet does, so the Deployment and ReplicaSet controllers see real
 * readiness. A deleted pod is stopped within its grace period and then removed (the kubelet's final
 * delete).
 *
 * A volume it cannot mount (a type it does not model, a missing Secret or ConfigMap, a claim missing or not
 * bound yet) keeps the pod Pending with the reason in its status and a FailedMount Event, and is tried again
 * every volume sync (and when a claim changes).
 *
 * persistentVolumeClaims are folders: the agent runs the local provisioner of the StorageClass `fnmesh-local`
 * (cluster/local-provisioner.ts), which makes a folder under `<runDir>/volumes` and a PersistentVolume for each
 * claim the scheduler gives this node, and removes both once the claim is deleted; a claim's pod binds its
 * PV's folder (hostPath or local PVs, the provisioner's or any other).
 *
 * Cluster networking, on loopback and Unix sockets only (cluster/service-proxy.ts, decisions in
 * cluster/service-routes.ts): inside every pod a pod IP 10.244.a.b is reached at 127.244.a.b and a ClusterIP
 * 10.96.a.b at 127.96.a.b (cluster/cluster-addresses.ts); the pod's sandbox answers each Service port and
 * each other pod's ports there and relays to this agent, which picks a ready endpoint. Each pod gets an
 * /etc/hosts with the Services' names (rewritten in place as they change), its hostname in its own UTS
 * namespace, the Service environment variables (KUBERNETES_SERVICE_HOST=kubernetes.default.svc, relayed to
 * the API server), and NodePort Services listen on this machine's 127.0.0.1:<nodePort>. A route the sandbox
 * cannot answer on, or a node port already taken, is a Warning Event.
 *
 * What a kubelet does and this does not: persistentVolumeClaims and the other volume types but configMap,
 * secret, emptyDir, downwardAPI, projected and hostPath; resource limits, security contexts but readOnlyRootFilesystem (the processes run as
 * this user; a read-only root is every mount but the container's volumes, /proc, /sys and /dev remounted
 * read-only in its mount namespace: cluster/volume-plan.ts), images (a reference names a local folder: cluster/images.ts; the official `nats` image is the
 * nats-server built by scripts/nats-server-tool.sh, cluster/nats-image.ts, and a tag of another version is
 * refused), `kubectl logs/exec` (the containers' output is printed by `fnmesh cluster`, prefixed with pod and
 * container); of networking: UDP, DNS servers (names resolve from /etc/hosts only: no search domains, no SRV
 * records), NetworkPolicies, sessionAffinity, externalTrafficPolicy, hostNetwork and hostPort; a Service's
 * ClusterIP env vars are the in-pod addresses (127.96.a.b), not the ClusterIPs.
 */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { KubeAccess } from '../common/kube-access';
import { KubeApiError, KubeClient } from '../common/kube-client';
import { jsonInformerFactory, ResilientInformer } from '../common/kube-informer';
import { errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import type { ChildListener } from '../common/process/supervisor';
import type { BackoffPolicy } from '../common/process/backoff';
import type { LocalImages } from './images';
import { ContainerRunner } from './container-runner';
import { isPlanError, planPod, referencedObjects } from './pod-plan';
import { PodRunner } from './pod-runner';
import { PodVolumes, type VolumeSource } from './pod-volumes';
import { LocalProvisioner } from './local-provisioner';
import { mountProblemMessage } from './volume-plan';
import { relay } from './relay';
import { podStatus, type PodObserved, type PodStatusPatch } from './pod-status';
import { podIPNumber, podIPOf } from './cluster-addresses';
import type { SandboxReport } from './sandbox-control';
import { ServiceProxy } from './service-proxy';
import { hostsFile, podHostname, podRoutes, serviceEnv, type NodePortRoute } from './service-routes';

export interface EgressRoute {
  /** The port inside every pod (127.0.0.1:port). */
  port: number;
  /** Where it leads on this machine. */
  host: string;
  targetPort: number;
}

export interface NodeAgentOptions {
  /** How to reach the API server (common/kubeconfig.ts's `loadKubeAccess`). */
  access: KubeAccess;
  nodeName: string;
  /** Sockets live here (keep the path short: Unix socket paths are limited to 107 bytes). */
  runDir: string;
  images: LocalImages;
  egress: EgressRoute[];
  sandboxScript: string;
  logger: Logger;
  /** Each container's output, a chunk at a time. */
  output(pod: string, container: string, stream: 'stdout' | 'stderr', chunk: Buffer): void;
  groups?: ChildListener;
  leaseDurationSeconds?: number;
  /** Restart back-off of crashed containers (default 1 s doubling to 30 s). */
  backoff?: BackoffPolicy;
  /**
   * How often each pod's volumes are synced: changed Secrets and ConfigMaps written, tokens renewed, a pod
   * waiting for a volume tried again (default 10 s; the kubelet's sync period is about a minute).
   */
  volumeSyncMs?: number;
  /** A node port now serves a Service port (or no longer does): `fnmesh cluster` prints how to reach it. */
  onNodePort?(route: NodePortRoute, open: boolean): void;
}

/** Where the local provisioner makes the folders of this node's PersistentVolumes. */
export const volumesDirOf = (runDir: string): string => path.join(runDir, 'volumes');

interface PodEntry {
  uid: string;
  namespace: string;
  name: string;
  label: string;
  pod: V1Pod;
  podIP: string;
  startTime: string;
  runner?: PodRunner;
  /** Why the pod could not be set up (secrets missing, sandbox failed), shown as its status. */
  setupError?: string;
  volumes?: PodVolumes;
  /** Why its volumes cannot be mounted (the pod waits, retried every volume sync). */
  mountProblem?: string;
  /** The last FailedMount message sent as an Event (one Event per distinct message). */
  mountEvent?: string;
  /** runPod is under way. */
  starting: boolean;
  stopping?: Promise<void>;
  lastWritten?: string;
  writing: boolean;
  dirty: boolean;
  lastConditions: PodStatusPatch['conditions'];
  gone: boolean;
  /** The pod's ingress socket (the agent's way into the pod). */
  ingressPath: string;
  /** The file bound on the pod's /etc/hosts, and what was last written to it. */
  hostsPath: string;
  hostsText?: string;
  /** The routes last sent to the sandbox (JSON), and the last route problem reported as an Event. */
  routesJson?: string;
  routeProblem?: string;
}

const HOST_IP = '127.0.0.1';
const MERGE_PATCH = 'application/merge-patch+json';
const microTime = (ms = Date.now()): string => new Date(ms).toISOString().replace('Z', '000Z');

export class NodeAgent {
  private readonly client: KubeClient;
  private readonly pods = new Map<string, PodEntry>();
  private readonly usedIPs = new Set<number>();
  private informer: ResilientInformer<V1Pod> | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private volumeTimer: NodeJS.Timeout | undefined;
  private syncingVolumes = false;
  private readonly egressServers: net.Server[] = [];
  private proxy: ServiceProxy | undefined;
  private provisioner: LocalProvisioner | undefined;
  private networkTimer: NodeJS.Immediate | undefined;
  private stopped = false;
  private readonly log: Logger;

  constructor(private readonly options: NodeAgentOptions) {
    this.client = new KubeClient(options.access, { connections: 4 });
    this.log = options.logger.child({ node: options.nodeName });
  }

  async start(): Promise<void> {
    mkdirSync(path.join(this.options.runDir, 'pods'), { recursive: true });
    for (const route of this.options.egress) await this.startEgress(route);
    await this.registerNode();
    await this.renewLease();
    const leaseMs = ((this.options.leaseDurationSeconds ?? 40) * 1000) / 4;
    this.leaseTimer = setInterval(
      () =>
        void this.renewLease().catch((err: unknown) =>
          this.log.warn(`renewing the node lease failed: ${errorMessage(err)}`),
        ),
      leaseMs,
    );
    this.statusTimer = setInterval(
      () =>
        void this.patchNodeStatus().catch((err: unknown) =>
          this.log.warn(`updating the node status failed: ${errorMessage(err)}`),
        ),
      60_000,
    );
    this.volumeTimer = setInterval(() => void this.syncVolumes(), this.options.volumeSyncMs ?? 10_000);
    const api = new URL(this.options.access.server);
    this.proxy = new ServiceProxy({
      client: this.client,
      socketPath: this.routesPath(),
      apiServer: { host: api.hostname, port: Number(api.port || 443) },
      pods: () => [...this.pods.values()].filter((e) => !e.gone).map((e) => ({ podIP: e.podIP, pod: e.pod })),
      ingressOf: (ip) => {
        for (const e of this.pods.values()) if (e.podIP === ip && e.runner && !e.gone) return e.ingressPath;
        return undefined;
      },
      onChange: () => this.networkChanged(),
      serviceProblem: (service, reason, message) => void this.serviceEvent(service, reason, message),
      ...(this.options.onNodePort ? { onNodePort: this.options.onNodePort } : {}),
      logger: this.log,
    });
    await this.proxy.start();
    this.provisioner = new LocalProvisioner({
      client: this.client,
      nodeName: this.options.nodeName,
      volumesDir: volumesDirOf(this.options.runDir),
      logger: this.log,
      event: (claim, type, reason, message) =>
        void this.postEvent({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', ...claim }, type, reason, message),
      onClaim: (claim) => this.onClaim(claim),
    });
    await this.provisioner.start();
    this.informer = new ResilientInformer<V1Pod>({
      resource: 'pods',
      factory: jsonInformerFactory<V1Pod>({ client: this.client, path: '/api/v1/pods', apiVersion: 'v1', kind: 'Pod' }),
      handlers: {
        add: (p) => this.onPod(p),
        update: (p) => this.onPod(p),
        delete: (p) => this.onPodGone(p),
      },
      resyncMs: 30_000,
      logger: this.log,
    });
    await this.informer.start();
  }

  /** Stops every pod (SIGTERM, SIGKILL after `graceMs`), then the watch and the timers. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.leaseTimer);
    clearInterval(this.statusTimer);
    clearInterval(this.volumeTimer);
    await this.informer?.stop();
    await this.provisioner?.stop();
    await Promise.all([...this.pods.values()].map((e) => e.runner?.stop(Math.min(graceMs, this.graceOf(e.pod)))));
    if (this.networkTimer) clearImmediate(this.networkTimer);
    await this.proxy?.stop();
    for (const s of this.egressServers) s.close();
    await this.client.close();
  }

  /** SIGKILL to every process now (for an exit handler). */
  killAll(): void {
    for (const e of this.pods.values()) e.runner?.kill();
  }

  private startEgress(route: EgressRoute): Promise<void> {
    const socketPath = this.egressPath(route.port);
    rmSync(socketPath, { force: true });
    const server = net.createServer((inbound) =>
      relay(inbound, net.connect({ host: route.host, port: route.targetPort })),
    );
    this.egressServers.push(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  }

  private egressPath(port: number): string {
    return path.join(this.options.runDir, `egress-${port}.sock`);
  }

  private routesPath(): string {
    return path.join(this.options.runDir, 'routes.sock');
  }

  /** Services, EndpointSlices or pods changed: each running pod's routes and hosts file follow (coalesced). */
  private networkChanged(): void {
    if (this.stopped || this.networkTimer) return;
    this.networkTimer = setImmediate(() => {
      this.networkTimer = undefined;
      if (this.stopped || !this.proxy) return;
      const view = this.proxy.view();
      for (const e of this.pods.values()) {
        if (!e.runner || e.gone || e.stopping) continue;
        const routes = podRoutes(view, e.podIP);
        const json = JSON.stringify(routes);
        if (json !== e.routesJson) {
          e.routesJson = json;
          e.runner.setRoutes(routes);
        }
        this.writeHosts(e, hostsFile(view, e.pod, e.podIP));
      }
    });
  }

  /** Writes the pod's hosts file in place (the same inode: a new file would not be seen through the bind mount). */
  private writeHosts(e: PodEntry, text: string): void {
    if (text === e.hostsText) return;
    try {
      // O_TRUNC on the existing file: the same inode, which the pod's bind mount shows
      writeFileSync(e.hostsPath, text, { mode: 0o644 });
      e.hostsText = text;
    } catch (err) {
      this.log.warn(`${e.namespace}/${e.name}: cannot write its hosts file ${e.hostsPath}: ${errorMessage(err)}`);
    }
  }

  /** The sandbox's answer to a routes change: a route it cannot answer on is a Warning Event (once per message). */
  private onRoutes(e: PodEntry, report: SandboxReport): void {
    const failed = report.routes.failed;
    const message =
      failed.length === 0
        ? undefined
        : `cannot serve ${failed.length} of the pod's Service and pod routes: ${failed
            .slice(0, 5)
            .map((f) => `${f.address}:${f.port}: ${f.error}`)
            .join('; ')}`;
    if (message === e.routeProblem) return;
    e.routeProblem = message;
    if (!message) return;
    this.log.warn(`${e.namespace}/${e.name}: ${message}`);
    void this.event(e, 'Warning', 'FailedServiceRoutes', message);
  }

  private nodeObject(): Record<string, unknown> {
    return {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name: this.options.nodeName,
        labels: {
          'kubernetes.io/hostname': this.options.nodeName,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': process.arch === 'x64' ? 'amd64' : process.arch,
          'fnmesh.io/node': 'local-processes',
        },
      },
    };
  }

  private nodeStatus(): Record<string, unknown> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const resources = {
      cpu: String(os.cpus().length),
      memory: `${Math.floor(os.totalmem() / 1024 / 1024)}Mi`,
      pods: '110',
    };
    const cond = (type: string, status: string, reason: string, message: string): Record<string, string> => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
      lastTransitionTime: this.startedAt,
    });
    return {
      capacity: resources,
      allocatable: resources,
      addresses: [
        { type: 'InternalIP', address: HOST_IP },
        { type: 'Hostname', address: this.options.nodeName },
      ],
      conditions: [
        cond(
          'MemoryPressure',
          'False',
          'KubeletHasSufficientMemory',
          'fnmesh node agent has sufficient memory available',
        ),
        cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'fnmesh node agent has no disk pressure'),
        cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'fnmesh node agent has sufficient PID available'),
        cond('Ready', 'True', 'KubeletReady', 'fnmesh node agent is posting ready status: pods run as local processes'),
      ],
      nodeInfo: {
        architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        operatingSystem: 'linux',
        kernelVersion: os.release(),
        osImage: `${os.type()} ${os.release()}`,
        containerRuntimeVersion: 'fnmesh-processes://0.1.0',
        kubeletVersion: 'v1.35.4',
        kubeProxyVersion: '',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    };
  }

  private readonly startedAt = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

  private async registerNode(): Promise<void> {
    await this.client.request('POST', '/api/v1/nodes', { body: this.nodeObject() }).catch((err: unknown) => {
      if (!(err instanceof KubeApiError && err.code === 409)) throw err; // registered by an earlier run: keep it
    });
    await this.patchNodeStatus();
    this.log.info(`node ${this.options.nodeName} registered`);
  }

  private async patchNodeStatus(): Promise<void> {
    await this.client.request('PATCH', `/api/v1/nodes/${this.options.nodeName}/status`, {
      body: { status: this.nodeStatus() },
      contentType: MERGE_PATCH,
    });
  }

  private async renewLease(): Promise<void> {
    const name = this.options.nodeName;
    const leasePath = `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`;
    const spec = {
      holderIdentity: name,
      leaseDurationSeconds: this.options.leaseDurationSeconds ?? 40,
      renewTime: microTime(),
    };
    const patched = await this.call('PATCH', leasePath, { spec }, MERGE_PATCH);
    if (patched.status === 404) {
      await this.client.request('POST', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases', {
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace: 'kube-node-lease' },
          spec,
        },
      });
    } else if (patched.status >= 300 || patched.status === 0)
      throw new Error(`PATCH ${leasePath}: ${patched.status} ${String(patched.body)}`);
  }

  /** A request whose failure is an answer: `ok`, the HTTP status (0 when it could not be sent) and the body. */
  private async call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType?: string,
  ): Promise<{ ok: true; status: number; body: T } | { ok: false; status: number; body: string }> {
    try {
      return { ok: true, status: 200, body: await this.client.request<T>(method, path, { body, contentType }) };
    } catch (err) {
      if (err instanceof KubeApiError) return { ok: false, status: err.code, body: err.body };
      return { ok: false, status: 0, body: errorMessage(err) };
    }
  }

  private graceOf(pod: V1Pod): number {
    const s = pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
    return s * 1000;
  }

  private allocateIP(): string {
    for (let i = 2; i < 65_000; i++) {
      if (!this.usedIPs.has(i)) {
        this.usedIPs.add(i);
        return podIPOf(i);
      }
    }
    throw new Error('no pod IP left');
  }

  private releaseIP(ip: string): void {
    this.usedIPs.delete(podIPNumber(ip));
  }

  private onPod(pod: V1Pod): void {
    if (this.stopped || pod.spec?.nodeName !== this.options.nodeName) return;
    const uid = pod.metadata?.uid;
    if (!uid) return;
    let entry = this.pods.get(uid);
    if (entry) {
      entry.pod = pod;
      entry.volumes?.update(pod);
    }
    if (pod.metadata?.deletionTimestamp) {
      if (!entry) {
        void this.finalDelete(pod);
        return;
      }
      if (!entry.stopping) entry.stopping = this.stopPod(entry);
      return;
    }
    if (entry) return;
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    const short = uid.slice(0, 8);
    entry = {
      uid,
      ingressPath: path.join(this.options.runDir, 'pods', `${short}.sock`),
      hostsPath: path.join(this.options.runDir, 'pods', `${short}.hosts`),
      namespace: pod.metadata!.namespace ?? 'default',
      name: pod.metadata!.name ?? uid,
      label: pod.metadata!.name ?? uid,
      pod,
      podIP: this.allocateIP(),
      startTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
      writing: false,
      dirty: false,
      lastConditions: [],
      gone: false,
      starting: false,
    };
    this.pods.set(uid, entry);
    this.networkChanged(); // the other pods get routes to this one's address
    void this.runPod(entry);
  }

  /** What pod volumes read, from the API server (as this agent: the kubelet's reads). */
  private readonly volumeSource: VolumeSource = {
    secret: async (ns, name) => {
      const r = await this.call<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${ns}/secrets/${name}`);
      if (r.status === 404) return undefined;
      if (!r.ok) throw new Error(`cannot read Secret ${ns}/${name}: ${r.status} ${r.body}`);
      return Object.fromEntries(Object.entries(r.body.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));
    },
    configMap: async (ns, name) => {
      const r = await this.call<{ data?: Record<string, string>; binaryData?: Record<string, string> }>(
        'GET',
        `/api/v1/namespaces/${ns}/configmaps/${name}`,
      );
      if (r.status === 404) return undefined;
      if (!r.ok) throw new Error(`cannot read ConfigMap ${ns}/${name}: ${r.status} ${r.body}`);
      return {
        ...Object.fromEntries(Object.entries(r.body.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'utf8')])),
        ...Object.fromEntries(Object.entries(r.body.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
      };
    },
    token: async (ns, sa, req) => {
      const r = await this.call<{ status?: { token?: string; expirationTimestamp?: string } }>(
        'POST',
        `/api/v1/namespaces/${ns}/serviceaccounts/${sa}/token`,
        {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            audiences: req.audience ? [req.audience] : [],
            expirationSeconds: req.expirationSeconds,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: req.podName, uid: req.podUid },
          },
        },
      );
      const token = r.ok ? r.body.status?.token : undefined;
      if (!r.ok || !token)
        throw new Error(
          `the TokenRequest for ServiceAccount ${ns}/${sa} failed: ${r.status} ${JSON.stringify(r.body)}`,
        );
      const exp = r.body.status?.expirationTimestamp;
      return {
        token,
        expiresAt: exp ? new Date(exp) : new Date(Date.now() + req.expirationSeconds * 1000),
      };
    },
    claim: (ns, name) =>
      this.getOrAbsent<V1PersistentVolumeClaim>(
        `/api/v1/namespaces/${ns}/persistentvolumeclaims/${name}`,
        `PersistentVolumeClaim ${ns}/${name}`,
      ),
    volume: (name) =>
      this.getOrAbsent<V1PersistentVolume>(`/api/v1/persistentvolumes/${name}`, `PersistentVolume ${name}`),
  };

  /** A GET whose 404 is an answer (undefined). */
  private async getOrAbsent<T>(p: string, what: string): Promise<T | undefined> {
    const r = await this.call<T>('GET', p);
    if (r.status === 404) return undefined;
    if (!r.ok) throw new Error(`cannot read ${what}: ${r.status} ${r.body}`);
    return r.body;
  }

  /** Mounts fail: the pod waits with the reason (status, one Event per distinct message), tried again later. */
  private mountFailed(e: PodEntry, message: string): void {
    e.mountProblem = message;
    if (e.mountEvent !== message) {
      e.mountEvent = message;
      this.log.warn(`${e.namespace}/${e.name}: ${message}`);
      void this.event(e, 'Warning', 'FailedMount', message);
    }
    this.statusChanged(e);
  }

  /** A claim changed: the pods waiting to mount it are tried again now (not at the next volume sync). */
  private onClaim(claim: V1PersistentVolumeClaim): void {
    if (this.stopped || claim.status?.phase !== 'Bound') return;
    const ns = claim.metadata?.namespace;
    const name = claim.metadata?.name;
    for (const e of this.pods.values()) {
      if (e.runner || e.starting || e.stopping || e.gone || !e.mountProblem || e.namespace !== ns) continue;
      if ((e.pod.spec?.volumes ?? []).some((v) => v.persistentVolumeClaim?.claimName === name)) void this.runPod(e);
    }
  }

  /** Every volume sync: a waiting pod is tried again; a running pod's Secrets, ConfigMaps and tokens refreshed. */
  private async syncVolumes(): Promise<void> {
    if (this.syncingVolumes) return; // the last sync is still under way (a slow API server)
    this.syncingVolumes = true;
    try {
      await this.syncEachPod();
    } finally {
      this.syncingVolumes = false;
    }
  }

  private async syncEachPod(): Promise<void> {
    for (const e of [...this.pods.values()]) {
      if (e.stopping || e.gone || this.stopped) continue;
      if (!e.runner) {
        if (e.mountProblem && !e.starting) void this.runPod(e);
        continue;
      }
      if (!e.volumes?.refreshes) continue;
      try {
        const { plan, changed } = await e.volumes.sync();
        if (plan.problems.length > 0) {
          this.mountFailed(e, mountProblemMessage(plan.problems));
          continue;
        }
        e.mountProblem = undefined;
        e.mountEvent = undefined;
        if (changed.length > 0) this.log.info(`${e.namespace}/${e.name}: volumes updated: ${changed.join(', ')}`);
      } catch (err) {
        this.mountFailed(e, `MountVolume.SetUp failed: ${errorMessage(err)}`);
      }
    }
  }

  private async runPod(e: PodEntry): Promise<void> {
    e.starting = true;
    try {
      const short = e.uid.slice(0, 8);
      e.volumes ??= new PodVolumes(
        e.pod,
        path.join(this.options.runDir, 'pods', short),
        this.volumeSource,
        this.options.nodeName,
      );
      try {
        const { plan } = await e.volumes.sync();
        if (plan.problems.length > 0) {
          this.mountFailed(e, mountProblemMessage(plan.problems));
          return;
        }
      } catch (err) {
        this.mountFailed(e, `MountVolume.SetUp failed: ${errorMessage(err)}`);
        return;
      }
      if (e.mountProblem) {
        e.mountProblem = undefined;
        e.mountEvent = undefined;
        this.statusChanged(e);
      }
      if (e.stopping || e.gone) return;
      const refs = referencedObjects(e.pod);
      const secrets = new Map<string, Record<string, string>>();
      const configMaps = new Map<string, Record<string, string>>();
      for (const name of refs.secrets) {
        const r = await this.call<{ data?: Record<string, string> }>(
          'GET',
          `/api/v1/namespaces/${e.namespace}/secrets/${name}`,
        );
        if (r.ok)
          secrets.set(
            name,
            Object.fromEntries(
              Object.entries(r.body.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
            ),
          );
      }
      for (const name of refs.configMaps) {
        const r = await this.call<{ data?: Record<string, string> }>(
          'GET',
          `/api/v1/namespaces/${e.namespace}/configmaps/${name}`,
        );
        if (r.ok) configMaps.set(name, r.body.data ?? {});
      }
      // The Service variables of the Services that exist now, as a kubelet sets them (under the pod spec's env).
      const view = this.proxy!.view();
      const baseEnv: Record<string, string> = {
        PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
        ...serviceEnv(view.services, e.namespace, e.pod.spec?.enableServiceLinks !== false),
      };
      if (process.env.HOME) baseEnv.HOME = process.env.HOME;
      const plan = planPod(e.pod, {
        images: this.options.images,
        nodeName: this.options.nodeName,
        podIP: e.podIP,
        hostIP: HOST_IP,
        secrets,
        configMaps,
        baseEnv,
      });
      for (const c of plan.containers) {
        if (isPlanError(c)) void this.event(e, 'Warning', 'Failed', `container ${c.name}: ${c.reason}: ${c.message}`);
        else c.mounts = e.volumes.hostMounts(c.name);
      }
      this.writeHosts(e, hostsFile(view, e.pod, e.podIP));
      const routes = podRoutes(view, e.podIP);
      e.routesJson = JSON.stringify(routes);
      const runner = new PodRunner(plan, {
        podName: e.name,
        sandboxScript: this.options.sandboxScript,
        ingressPath: e.ingressPath,
        hostsFile: e.hostsPath,
        hostname: podHostname(e.pod),
        routesSocket: this.routesPath(),
        routes,
        onRoutes: (report) => this.onRoutes(e, report),
        egress: this.options.egress.map((r) => ({ port: r.port, socketPath: this.egressPath(r.port) })),
        tmpfsDirs: e.volumes.memoryDirs(),
        output: (container, stream, chunk) => this.options.output(e.label, container, stream, chunk),
        report: (level, message) => this.log[level](`${e.namespace}/${e.name}: ${message}`),
        onChange: () => this.statusChanged(e),
        groups: this.options.groups,
        backoff: this.options.backoff,
      });
      e.runner = runner;
      if (e.stopping || e.gone) return;
      this.log.info(`${e.namespace}/${e.name}: starting (pod IP ${e.podIP})`);
      await runner.start();
    } catch (err) {
      e.setupError = errorMessage(err);
      this.log.error(`${e.namespace}/${e.name}: cannot run the pod: ${e.setupError}`);
      void this.event(e, 'Warning', 'FailedCreatePodSandBox', e.setupError);
      this.statusChanged(e);
    } finally {
      e.starting = false;
    }
  }

  private async stopPod(e: PodEntry): Promise<void> {
    const grace = this.graceOf(e.pod);
    this.log.info(`${e.namespace}/${e.name}: stopping (grace period ${grace / 1000} s)`);
    await e.runner?.stop(grace);
    await this.finalDelete(e.pod);
    this.forget(e);
  }

  /** The kubelet's last word on a pod: delete it for good (grace 0), only if it is still the same pod. */
  private async finalDelete(pod: V1Pod): Promise<void> {
    const ns = pod.metadata?.namespace ?? 'default';
    const name = pod.metadata?.name ?? '';
    const p = `/api/v1/namespaces/${ns}/pods/${name}`;
    const r = await this.call('DELETE', p, {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      gracePeriodSeconds: 0,
      preconditions: { uid: pod.metadata?.uid },
    });
    if (!r.ok && r.status !== 404 && r.status !== 409)
      this.log.warn(`${ns}/${name}: the final delete failed: ${r.status} ${JSON.stringify(r.body)}`);
  }

  private onPodGone(pod: V1Pod): void {
    const uid = pod.metadata?.uid;
    const e = uid ? this.pods.get(uid) : undefined;
    if (!e) return;
    e.gone = true;
    if (!e.stopping) {
      // Removed without a graceful deletion (force delete): stop at once, as the kubelet does.
      e.runner?.kill();
      this.forget(e);
    }
  }

  private forget(e: PodEntry): void {
    e.gone = true;
    if (this.pods.get(e.uid) === e) this.pods.delete(e.uid);
    this.releaseIP(e.podIP);
    e.volumes?.remove();
    rmSync(e.hostsPath, { force: true });
    this.networkChanged();
  }

  private statusChanged(e: PodEntry): void {
    e.dirty = true;
    if (!e.writing) void this.writeStatus(e);
  }

  private async writeStatus(e: PodEntry): Promise<void> {
    e.writing = true;
    try {
      while (e.dirty && !e.gone && !this.stopped) {
        e.dirty = false;
        const status = this.statusOf(e);
        const json = JSON.stringify(status);
        if (json === e.lastWritten) continue;
        const p = `/api/v1/namespaces/${e.namespace}/pods/${e.name}/status`;
        const r = await this.call('PATCH', p, { metadata: { uid: e.uid }, status }, MERGE_PATCH);
        if (r.ok) {
          e.lastWritten = json;
          e.lastConditions = status.conditions;
        } else if (r.status === 404 || r.status === 409) {
          return; // the pod is gone (or replaced by a namesake)
        } else if (r.status >= 400 && r.status < 500 && r.status !== 429) {
          // Refused as written: retrying the same status cannot help; the next change writes again.
          this.log.error(
            `${e.namespace}/${e.name}: the API server refused the pod status: ${r.status} ${JSON.stringify(r.body)}; status: ${json}`,
          );
          return;
        } else {
          this.log.warn(
            `${e.namespace}/${e.name}: writing the pod status failed: ${r.status} ${JSON.stringify(r.body)}; retrying`,
          );
          e.dirty = true;
          await new Promise((resolve) => setTimeout(resolve, 1_000));
        }
      }
    } finally {
      e.writing = false;
    }
  }

  private statusOf(e: PodEntry): PodStatusPatch {
    const observed = e.runner?.observed() ?? {
      sandboxReady: false,
      // before its runner exists every container waits (as a kubelet reports a pod it is setting up), so a pod
      // whose mount problem just cleared is not counted Ready with no container running
      containers: this.waitingContainers(e.pod, 'ContainerCreating', e.mountProblem ?? ''),
    };
    const status = podStatus(
      {
        podName: e.name,
        sandboxReady: observed.sandboxReady,
        podIP: e.podIP,
        hostIP: HOST_IP,
        startTime: e.startTime,
        containers: observed.containers,
        restartPolicy: (e.pod.spec?.restartPolicy ?? 'Always') as PodObserved['restartPolicy'],
      },
      e.lastConditions,
      new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    );
    const problem = e.setupError ?? (e.runner ? undefined : e.mountProblem);
    if (problem) {
      const ready = status.conditions.find((c) => c.type === 'Ready');
      if (ready) ready.message = problem;
    }
    return status;
  }

  /** Every container of the pod waiting with `reason` (the pod cannot start them yet). */
  private waitingContainers(
    pod: V1Pod,
    reason: string,
    message: string,
  ): ReturnType<PodRunner['observed']>['containers'] {
    const spec = pod.spec;
    return [
      ...(spec?.initContainers ?? []).map((c) =>
        ContainerRunner.waitingObservation(
          { name: c.name, role: c.restartPolicy === 'Always' ? 'sidecar' : 'init', image: c.image ?? '' },
          reason,
          message,
        ),
      ),
      ...(spec?.containers ?? []).map((c) =>
        ContainerRunner.waitingObservation({ name: c.name, role: 'main', image: c.image ?? '' }, reason, message),
      ),
    ];
  }

  private event(e: PodEntry, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    return this.postEvent(
      { apiVersion: 'v1', kind: 'Pod', name: e.name, namespace: e.namespace, uid: e.uid },
      type,
      reason,
      message,
    );
  }

  /** A Warning Event on Service `namespace/name`. */
  private serviceEvent(service: string, reason: string, message: string): Promise<void> {
    const [namespace, name] = service.split('/') as [string, string];
    const uid = this.proxy?.view().services.find((s) => s.metadata?.namespace === namespace && s.metadata.name === name)
      ?.metadata?.uid;
    return this.postEvent(
      { apiVersion: 'v1', kind: 'Service', name, namespace, ...(uid ? { uid } : {}) },
      'Warning',
      reason,
      message,
    );
  }

  private async postEvent(
    involvedObject: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string },
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
    const { namespace, name } = involvedObject;
    await this.call('POST', `/api/v1/namespaces/${namespace}/events`, {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${name}.`, namespace },
      involvedObject,
      type,
      reason,
      message,
      source: { component: 'fnmesh-node-agent', host: this.options.nodeName },
      reportingComponent: 'fnmesh-node-agent',
      reportingInstance: this.options.nodeName,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  }
}
