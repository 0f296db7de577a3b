/**
 * persistentVolumeClaims of `fnmesh cluster` and the official nats image on it (issue 12), on a real control
 * plane (etcd, kube-apiserver, controller-manager, scheduler) with the node agent and its local provisioner,
 * which installs the default StorageClass `fnmesh-local`, as in `fnmesh cluster`:
 *   - a StatefulSet of `nats:<NATS_SERVER_VERSION>` (the nats-server scripts/nats-server-tool.sh built) with its
 *     config from a ConfigMap, as the chart's, and a volumeClaimTemplate: the scheduler selects the node, the
 *     provisioner makes the folder and the PV, the PV controller binds it, the pod becomes Ready on its
 *     monitoring-port probe and JetStream writes into the claim;
 *   - the data survives the pod: a message stored in a file-backed JetStream stream is there in the
 *     re-created pod;
 *   - scaled down and its claim deleted: the PV and its folder are removed;
 *   - a pod naming a missing claim shows why in its status and Events, and starts once the claim is bound;
 *   - `nats:2.10.0` is refused with the fix in its status and Events;
 *   - a claim the provisioner cannot serve gets a ProvisioningFailed Event naming the fix.
 * The test reaches the NATS pod through a NodePort Service on 127.0.0.1.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { loadKubeAccess } from '../common/kubeconfig';
import { NATS_SERVER_VERSION } from '../common/nats-server-version';
import { humanLogger } from '../common/process/human-logger';
import {
  addNatsImage,
  loadImages,
  LOCAL_PROVISIONER,
  LOCAL_STORAGE_CLASS,
  natsServerBinary,
  NodeAgent,
  volumesDirOf,
} from '../cluster/cluster';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { ROOT } from './helpers/cli-process';
import { waitFor } from './helpers/wait';

const NS = 'storage';
const NODE = 'storage-node';
const NATS_IMAGE = `nats:${NATS_SERVER_VERSION}`;

let cp: ControlPlane;
let agent: NodeAgent;
let runDir: string;
let hostDir: string;
const logs: string[] = [];

interface Meta {
  name: string;
  uid: string;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
}
interface PodJson {
  metadata: Meta;
  spec: { nodeName?: string };
  status?: {
    conditions?: { type: string; status: string; message?: string }[];
    containerStatuses?: {
      name: string;
      containerID?: string;
      state?: { running?: unknown; waiting?: { reason?: string; message?: string } };
    }[];
  };
}
interface ClaimJson {
  metadata: Meta;
  spec: { storageClassName?: string; volumeName?: string };
  status?: { phase?: string };
}
interface VolumeJson {
  metadata: Meta;
  spec: {
    capacity?: { storage?: string };
    accessModes?: string[];
    claimRef?: { namespace?: string; name?: string; uid?: string };
    hostPath?: { path: string; type?: string };
    persistentVolumeReclaimPolicy?: string;
    storageClassName?: string;
    nodeAffinity?: unknown;
  };
  status?: { phase?: string };
}
interface EventJson {
  type: string;
  reason: string;
  message: string;
  source?: { component?: string };
}

async function api<T = unknown>(p: string, method = 'GET', body?: unknown): Promise<{ status: number; body: T }> {
  const r = await cp.request(p, body === undefined ? { method } : { method, body });
  return r as { status: number; body: T };
}

async function apply(manifest: Record<string, unknown>): Promise<void> {
  const r = await cp.kubectl(['apply', '-f', '-'], JSON.stringify(manifest));
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
}

const get = async <T>(p: string): Promise<T | undefined> => {
  const r = await api<T>(p);
  return r.status === 200 ? r.body : undefined;
};
const pod = (name: string): Promise<PodJson | undefined> => get<PodJson>(`/api/v1/namespaces/${NS}/pods/${name}`);
const claim = (name: string): Promise<ClaimJson | undefined> =>
  get<ClaimJson>(`/api/v1/namespaces/${NS}/persistentvolumeclaims/${name}`);
const volume = (name: string): Promise<VolumeJson | undefined> => get<VolumeJson>(`/api/v1/persistentvolumes/${name}`);

async function events(kind: string, name: string): Promise<EventJson[]> {
  const selector = encodeURIComponent(`involvedObject.kind=${kind},involvedObject.name=${name}`);
  const r = await api<{ items: EventJson[] }>(`/api/v1/namespaces/${NS}/events?fieldSelector=${selector}`);
  return r.body.items ?? [];
}

const isReady = (p: PodJson | undefined): boolean =>
  (p?.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

/** The pod, Ready (and not the one with `notUid`, for a re-created StatefulSet pod). */
function waitReady(name: string, notUid?: string, timeoutMs = 90_000): Promise<PodJson> {
  return waitFor(
    async () => {
      const p = await pod(name);
      return p && p.metadata.uid !== notUid && !p.metadata.deletionTimestamp && isReady(p) ? p : undefined;
    },
    { timeoutMs, intervalMs: 200, what: `pod ${NS}/${name} Ready (agent: ${logs.slice(-6).join(' | ')})` },
  );
}

/** The chart's NATS server configuration, JetStream on its claim. */
const NATS_CONF = `server_name: $SERVER_NAME
listen: 0.0.0.0:4222
http_port: 8222
jetstream {
  store_dir: /data/jetstream
}
`;

function statefulSet(replicas: number): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'nats', namespace: NS },
    spec: {
      replicas,
      serviceName: 'nats-headless',
      selector: { matchLabels: { app: 'nats' } },
      template: {
        metadata: { labels: { app: 'nats' } },
        spec: {
          terminationGracePeriodSeconds: 5,
          automountServiceAccountToken: false,
          containers: [
            {
              name: 'nats',
              image: NATS_IMAGE,
              args: ['--config', '/etc/nats/nats.conf'],
              env: [{ name: 'SERVER_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
              ports: [
                { name: 'client', containerPort: 4222 },
                { name: 'monitor', containerPort: 8222 },
              ],
              readinessProbe: {
                httpGet: { path: '/healthz?js-server-only=true', port: 'monitor' },
                periodSeconds: 1,
                failureThreshold: 2,
              },
              volumeMounts: [
                { name: 'config', mountPath: '/etc/nats/nats.conf', subPath: 'nats.conf', readOnly: true },
                { name: 'data', mountPath: '/data' },
              ],
            },
          ],
          volumes: [{ name: 'config', configMap: { name: 'nats-config' } }],
        },
      },
      // no storageClassName: the cluster's default, as the chart's claims with default values
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
        },
      ],
    },
  };
}

function barePod(name: string, image: string, volumes: Record<string, unknown>[] = []): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      nodeName: NODE,
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      containers: [
        {
          name: 'nats',
          image,
          ports: [{ name: 'monitor', containerPort: 8222 }],
          readinessProbe: { httpGet: { path: '/healthz', port: 'monitor' }, periodSeconds: 1 },
          volumeMounts: volumes.map((v) => ({ name: v.name, mountPath: '/data' })),
        },
      ],
      volumes,
    },
  };
}

let natsPort = 0;
async function natsClient(): Promise<NatsConnection> {
  return waitFor(() => connect({ servers: `127.0.0.1:${natsPort}`, reconnect: false, timeout: 2_000 }), {
    timeoutMs: 20_000,
    intervalMs: 200,
    what: `a NATS connection through node port ${natsPort}`,
  });
}

async function jsApi<T>(nc: NatsConnection, subject: string, body: unknown = {}): Promise<T> {
  const m = await nc.request(subject, JSON.stringify(body), { timeout: 5_000 });
  const answer = m.json<T & { error?: { description: string } }>();
  if (answer.error) throw new Error(`${subject}: ${answer.error.description}`);
  return answer;
}

beforeAll(async () => {
  const sandboxScript = path.join(ROOT, 'dist', 'cluster', 'pod-sandbox.js');
  if (!existsSync(sandboxScript)) throw new Error('dist/ is missing: run `npm run build`');
  const natsServer = await natsServerBinary();
  if (!natsServer.built) throw new Error('nats-server is not built: run `bash scripts/nats-server-tool.sh`');
  cp = await startControlPlane({ kwokNode: false });
  runDir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-pvc-'));
  hostDir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-pvc-host-'));
  const images = loadImages(ROOT, []);
  addNatsImage(images, {
    dir: path.join(runDir, 'images', 'nats'),
    binary: natsServer.path,
    version: NATS_SERVER_VERSION,
    hostPath: process.env.PATH ?? '/usr/bin:/bin',
  });
  agent = new NodeAgent({
    access: loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} }),
    nodeName: NODE,
    runDir,
    images,
    egress: [],
    sandboxScript,
    logger: humanLogger((l) => logs.push(l), false),
    output: () => undefined,
    volumeSyncMs: 1_000,
  });
  await agent.start();
  await api('/api/v1/namespaces', 'POST', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await waitFor(async () => (await api(`/api/v1/namespaces/${NS}/serviceaccounts/default`)).status === 200, {
    timeoutMs: 30_000,
    what: `the default ServiceAccount of ${NS}`,
  });
  await apply({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: 'nats-config', namespace: NS },
    data: { 'nats.conf': NATS_CONF },
  });
  await apply({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'nats-client', namespace: NS },
    spec: {
      type: 'NodePort',
      selector: { app: 'nats' },
      ports: [{ name: 'client', port: 4222, targetPort: 'client' }],
    },
  });
  const svc = await get<{ spec: { ports: { nodePort: number }[] } }>(`/api/v1/namespaces/${NS}/services/nats-client`);
  natsPort = svc!.spec.ports[0]!.nodePort;
}, 120_000);

afterAll(async () => {
  await agent?.stop(2_000);
  await cp?.stop();
  if (runDir) rmSync(runDir, { recursive: true, force: true });
  if (hostDir) rmSync(hostDir, { recursive: true, force: true });
}, 60_000);

let pvName = '';
let firstUid = '';

test(`a StatefulSet of ${NATS_IMAGE} with a volumeClaimTemplate: the claim becomes a folder of the node, the pod Ready`, async () => {
  // the node agent's provisioner installed its StorageClass, the cluster's default
  const klass = await get<{ metadata: Meta; provisioner: string; volumeBindingMode: string; reclaimPolicy: string }>(
    `/apis/storage.k8s.io/v1/storageclasses/${LOCAL_STORAGE_CLASS}`,
  );
  expect(klass).toMatchObject({
    metadata: { annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
    provisioner: LOCAL_PROVISIONER,
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Delete',
  });
  await apply(statefulSet(1));
  const ready = await waitReady('nats-0');
  firstUid = ready.metadata.uid;
  expect(ready.spec.nodeName).toBe(NODE);

  // the claim: the default class filled in, the node selected by the scheduler, bound to the PV made for it
  const c = (await claim('data-nats-0'))!;
  expect(c.spec.storageClassName).toBe(LOCAL_STORAGE_CLASS);
  expect(c.metadata.annotations?.['volume.kubernetes.io/selected-node']).toBe(NODE);
  expect(c.metadata.annotations?.['volume.kubernetes.io/storage-provisioner']).toBe(LOCAL_PROVISIONER);
  expect(c.status?.phase).toBe('Bound');
  pvName = c.spec.volumeName!;
  expect(pvName).toBe(`pvc-${c.metadata.uid}`);

  const v = (await volume(pvName))!;
  const folder = path.join(volumesDirOf(runDir), pvName);
  expect(v.metadata.annotations?.['pv.kubernetes.io/provisioned-by']).toBe(LOCAL_PROVISIONER);
  expect(v.spec).toMatchObject({
    capacity: { storage: '1Gi' },
    accessModes: ['ReadWriteOnce'],
    claimRef: { namespace: NS, name: 'data-nats-0', uid: c.metadata.uid },
    hostPath: { path: folder, type: 'Directory' },
    persistentVolumeReclaimPolicy: 'Delete',
    storageClassName: LOCAL_STORAGE_CLASS,
    nodeAffinity: {
      required: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [NODE] }] }],
      },
    },
  });
  expect(v.status?.phase).toBe('Bound');
  expect(statSync(folder).mode & 0o777).toBe(0o777);
  // nats-server's JetStream store is in the claim (store_dir /data/jetstream), so on this machine in the folder
  await waitFor(() => existsSync(path.join(folder, 'jetstream')), { what: `JetStream's store in ${folder}` });
  const said = await events('PersistentVolumeClaim', 'data-nats-0');
  expect(said).toEqual(
    expect.arrayContaining([
      expect.objectContaining({
        type: 'Normal',
        reason: 'ProvisioningSucceeded',
        message: `Successfully provisioned volume ${pvName} (the folder ${folder} of node ${NODE})`,
      }),
    ]),
  );
}, 120_000);

test('the data survives the pod: a message in a file-backed JetStream stream is there in the re-created pod', async () => {
  expect(firstUid).not.toBe('');
  let nc = await natsClient();
  try {
    // the ConfigMap's configuration, SERVER_NAME from the pod's name (a fieldRef), as the chart sets it
    expect(nc.info?.server_name).toBe('nats-0');
    expect(nc.info?.version).toBe(NATS_SERVER_VERSION);
    await jsApi(nc, '$JS.API.STREAM.CREATE.ORDERS', { name: 'ORDERS', subjects: ['orders.>'], storage: 'file' });
    const ack = (await nc.request('orders.1', 'hello from the first pod', { timeout: 5_000 })).json<{ seq: number }>();
    expect(ack.seq).toBe(1);
  } finally {
    await nc.close();
  }
  const del = await api(`/api/v1/namespaces/${NS}/pods/nats-0`, 'DELETE');
  expect(del.status).toBe(200);
  const again = await waitReady('nats-0', firstUid);
  expect(again.metadata.uid).not.toBe(firstUid);
  expect((await claim('data-nats-0'))!.spec.volumeName).toBe(pvName);

  nc = await natsClient();
  try {
    const info = await jsApi<{ state: { messages: number } }>(nc, '$JS.API.STREAM.INFO.ORDERS');
    expect(info.state.messages).toBe(1);
    const got = await jsApi<{ message: { data: string; subject: string } }>(nc, '$JS.API.STREAM.MSG.GET.ORDERS', {
      seq: 1,
    });
    expect(got.message.subject).toBe('orders.1');
    expect(Buffer.from(got.message.data, 'base64').toString()).toBe('hello from the first pod');
  } finally {
    await nc.close();
  }
}, 120_000);

test('scaled to zero and its claim deleted: the PV and its folder are removed', async () => {
  expect(pvName).not.toBe('');
  const folder = path.join(volumesDirOf(runDir), pvName);
  await apply(statefulSet(0));
  await waitFor(async () => (await pod('nats-0')) === undefined, { timeoutMs: 60_000, what: 'nats-0 gone' });
  // scaled down, the claim and its data stay (a StatefulSet never deletes its claims by default)
  expect((await claim('data-nats-0'))?.status?.phase).toBe('Bound');
  expect(existsSync(folder)).toBe(true);

  const del = await api(`/api/v1/namespaces/${NS}/persistentvolumeclaims/data-nats-0`, 'DELETE');
  expect(del.status).toBe(200);
  await waitFor(async () => (await volume(pvName)) === undefined, {
    timeoutMs: 60_000,
    intervalMs: 200,
    what: `PV ${pvName} deleted (agent: ${logs.slice(-6).join(' | ')})`,
  });
  expect(existsSync(folder)).toBe(false);
  expect(readdirSync(volumesDirOf(runDir))).toEqual([]);
}, 120_000);

test('a pod naming a missing claim waits with the reason in its status and Events, and starts once it is bound', async () => {
  await apply(barePod('needs-claim', NATS_IMAGE, [{ name: 'data', persistentVolumeClaim: { claimName: 'later' } }]));
  const expected =
    'MountVolume.SetUp failed for volume "data" : error processing PVC storage/later: failed to fetch PVC from API server: persistentvolumeclaims "later" not found';
  const waiting = await waitFor(
    async () => {
      const w = (await pod('needs-claim'))?.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.message?.startsWith(expected) ? w : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the missing claim in the pod status' },
  );
  expect(waiting.reason).toBe('ContainerCreating');
  expect(waiting.message).toContain('create the claim in namespace storage');
  const ready = (await pod('needs-claim'))!.status!.conditions!.find((c) => c.type === 'Ready')!;
  expect(ready.status).toBe('False');
  expect(ready.message).toContain(expected);
  const failed = await waitFor(
    async () => (await events('Pod', 'needs-claim')).find((e) => e.reason === 'FailedMount'),
    { what: 'a FailedMount Event' },
  );
  expect(failed).toMatchObject({ type: 'Warning', source: { component: 'fnmesh-node-agent' } });
  expect(failed.message).toContain(expected);

  // the claim, with no class, and a PV made for it by hand (pre-bound to it, a folder of this machine)
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'later', namespace: NS },
    spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Mi' } } },
  });
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: 'by-hand' },
    spec: {
      storageClassName: '',
      capacity: { storage: '1Mi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      claimRef: { namespace: NS, name: 'later' },
      hostPath: { path: hostDir, type: 'Directory' },
    },
  });
  const started = await waitReady('needs-claim', undefined, 60_000);
  expect((await claim('later'))?.spec.volumeName).toBe('by-hand');
  // the PV's folder is the container's /data (seen through its own mount namespace)
  const status = started.status!.containerStatuses![0]!;
  expect(status.state?.running).toBeDefined();
  const pid = Number(status.containerID!.split('/').pop());
  writeFileSync(path.join(hostDir, 'hello.txt'), 'from the host');
  expect(readFileSync(`/proc/${pid}/root/data/hello.txt`, 'utf8')).toBe('from the host');
  // the pod did not go away: the same pod waited, then started
  expect((await events('Pod', 'needs-claim')).filter((e) => e.reason === 'FailedMount').length).toBeGreaterThan(0);
  // a PV the provisioner did not make is not its to delete
  await api(`/api/v1/namespaces/${NS}/pods/needs-claim`, 'DELETE');
  await waitFor(async () => (await pod('needs-claim')) === undefined, { timeoutMs: 30_000, what: 'needs-claim gone' });
  await api(`/api/v1/namespaces/${NS}/persistentvolumeclaims/later`, 'DELETE');
  await waitFor(async () => (await volume('by-hand'))?.status?.phase === 'Released', {
    timeoutMs: 30_000,
    what: 'by-hand Released',
  });
  expect(existsSync(hostDir)).toBe(true);
}, 120_000);

test('nats:2.10.0 is refused, the version fnmesh cluster runs and the fix in its status and Events', async () => {
  await apply(barePod('old-nats', 'nats:2.10.0'));
  const waiting = await waitFor(
    async () => {
      const w = (await pod('old-nats'))?.status?.containerStatuses?.[0]?.state?.waiting;
      return w?.reason === 'ErrImageNeverPull' ? w : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'ErrImageNeverPull in the pod status' },
  );
  const why = `image nats:2.10.0 is nats-server 2.10.0, but fnmesh cluster runs the official nats image with the nats-server it builds, v${NATS_SERVER_VERSION}`;
  expect(waiting.message).toContain(why);
  expect(waiting.message).toContain(`use nats:${NATS_SERVER_VERSION}`);
  const failed = await waitFor(async () => (await events('Pod', 'old-nats')).find((e) => e.message.includes(why)), {
    what: 'the refusal as an Event',
  });
  expect(failed).toMatchObject({ type: 'Warning', reason: 'Failed' });
  expect(failed.message).toContain('ErrImageNeverPull');
  expect(failed.message).toContain(`or set NATS_SERVER_VERSION there and run bash scripts/nats-server-tool.sh`);
}, 60_000);

test('a claim the provisioner cannot serve (a class of it with Immediate binding) gets a ProvisioningFailed Event with the fix', async () => {
  await apply({
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: 'fnmesh-now' },
    provisioner: LOCAL_PROVISIONER,
    volumeBindingMode: 'Immediate',
  });
  await apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: 'at-once', namespace: NS },
    spec: {
      storageClassName: 'fnmesh-now',
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: '1Mi' } },
    },
  });
  const refused = await waitFor(
    async () => (await events('PersistentVolumeClaim', 'at-once')).find((e) => e.reason === 'ProvisioningFailed'),
    { timeoutMs: 30_000, intervalMs: 200, what: 'a ProvisioningFailed Event on the claim' },
  );
  expect(refused).toMatchObject({ type: 'Warning', source: { component: 'fnmesh-node-agent' } });
  expect(refused.message).toBe(
    "StorageClass fnmesh-now has volumeBindingMode Immediate: fnmesh.io/local makes the folder on the node of the claim's first pod, so its class needs volumeBindingMode WaitForFirstConsumer",
  );
  expect((await claim('at-once'))?.status?.phase).toBe('Pending');
  // one Event per distinct reason, not one per reconcile
  expect(
    (await events('PersistentVolumeClaim', 'at-once')).filter((e) => e.reason === 'ProvisioningFailed'),
  ).toHaveLength(1);
}, 60_000);
