/**
 * The test control plane itself (test/helpers/control-plane.ts): a real API server, controller-manager and
 * scheduler with kwok's simulated node. The operator's tests build on this, so it proves what they rely on:
 * the version, Deployments becoming Available, garbage collection, ServiceAccount tokens with RBAC, and an
 * API server restart.
 */
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { waitFor } from './helpers/wait';

jest.setTimeout(90_000);

let cp: ControlPlane;

beforeAll(async () => {
  cp = await startControlPlane();
  report(`control plane started in ${cp.startMs} ms (${cp.server})`);
}, 120_000);

afterAll(async () => {
  await cp?.stop();
});

function report(line: string): void {
  process.stdout.write(`[control-plane.test] ${line}\n`);
}

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

function deployment(name: string, replicas: number): string {
  return JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'main', image: 'example.invalid/x:1', ports: [{ containerPort: 8080 }] }] },
      },
    },
  });
}

interface DeploymentJson {
  metadata: { generation?: number };
  status?: {
    observedGeneration?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: { type: string; status: string }[];
  };
}

/** Creates a Deployment and waits until it is Available with all replicas ready; returns the milliseconds. */
async function createAvailable(name: string, replicas: number): Promise<number> {
  const t0 = Date.now();
  await kubectlOk(['apply', '-f', '-'], deployment(name, replicas));
  await waitFor(
    async () => {
      const d = JSON.parse(await kubectlOk(['get', 'deploy', name, '-o', 'json'])) as DeploymentJson;
      const s = d.status;
      return (
        s?.observedGeneration === d.metadata.generation &&
        s?.readyReplicas === replicas &&
        s?.availableReplicas === replicas &&
        s?.conditions?.some((c) => c.type === 'Available' && c.status === 'True')
      );
    },
    { timeoutMs: 30_000, intervalMs: 50, what: `deployment ${name} Available with ${replicas} ready replicas` },
  );
  return Date.now() - t0;
}

async function countOf(kind: string, selector: string): Promise<number> {
  const list = JSON.parse(await kubectlOk(['get', kind, '-l', selector, '-o', 'json'])) as { items: unknown[] };
  return list.items.length;
}

test('the API server reports v1.35.4 and kubectl is the one built with it', async () => {
  const v = JSON.parse(await kubectlOk(['version', '-o', 'json'])) as {
    clientVersion: { gitVersion: string };
    serverVersion: { gitVersion: string; major: string; minor: string };
  };
  expect(v.serverVersion.gitVersion).toBe('v1.35.4');
  expect(v.serverVersion.major).toBe('1');
  expect(v.serverVersion.minor).toBe('35');
  expect(v.clientVersion.gitVersion).toBe('v1.35.4');
  const direct = await cp.request('/version');
  expect(direct).toMatchObject({ status: 200, body: { gitVersion: 'v1.35.4' } });
});

test('a 3-replica Deployment becomes Available on the kwok node; deleting it garbage-collects all', async () => {
  const ms = await createAvailable('web', 3);
  report(`3-replica Deployment Available in ${ms} ms`);

  const pods = JSON.parse(await kubectlOk(['get', 'pods', '-l', 'app=web', '-o', 'json'])) as {
    items: { spec: { nodeName?: string }; status: { phase?: string; podIP?: string } }[];
  };
  expect(pods.items).toHaveLength(3);
  for (const p of pods.items) {
    expect(p.spec.nodeName).toBe('kwok-node-0');
    expect(p.status.phase).toBe('Running');
    expect(p.status.podIP).toMatch(/^10\.0\.0\./);
  }
  expect(await countOf('replicasets', 'app=web')).toBe(1);

  const t0 = Date.now();
  await kubectlOk(['delete', 'deployment', 'web', '--wait=false']);
  const gone = async (): Promise<boolean> =>
    (await countOf('replicasets', 'app=web')) === 0 && (await countOf('pods', 'app=web')) === 0;
  await waitFor(gone, {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'the ReplicaSet and pods of deployment web to be garbage-collected',
  });
  report(`deleted Deployment's ReplicaSet and pods garbage-collected in ${Date.now() - t0} ms`);
});

test('a pod with a native sidecar (restartable init container) becomes Ready on the kwok node', async () => {
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'with-sidecar', namespace: 'default' },
    spec: {
      initContainers: [{ name: 'sidecar', image: 'example.invalid/sidecar:1', restartPolicy: 'Always' }],
      containers: [{ name: 'main', image: 'example.invalid/x:1' }],
    },
  };
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(pod));
  const ready = await waitFor(
    async () => {
      const p = JSON.parse(await kubectlOk(['get', 'pod', 'with-sidecar', '-o', 'json'])) as {
        status: {
          conditions?: { type: string; status: string }[];
          initContainerStatuses?: { name: string; ready: boolean; started?: boolean }[];
        };
      };
      return p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'pod with-sidecar Ready' },
  );
  expect(ready.status.initContainerStatuses).toEqual([expect.objectContaining({ name: 'sidecar', ready: true })]);
  await kubectlOk(['delete', 'pod', 'with-sidecar', '--wait=false']);
});

test('kwok leaves a pod annotated kwok.x-k8s.io/status=custom alone, so a test can set its status', async () => {
  const pod = (name: string, custom: boolean): object => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', annotations: custom ? { 'kwok.x-k8s.io/status': 'custom' } : {} },
    spec: { containers: [{ name: 'main', image: 'example.invalid/x:1' }] },
  });
  interface PodJson {
    spec: { nodeName?: string };
    status: { phase?: string; podIP?: string; conditions?: { type: string; status: string }[] };
  }
  const get = async (name: string): Promise<PodJson> =>
    JSON.parse(await kubectlOk(['get', 'pod', name, '-o', 'json'])) as PodJson;
  const isReady = (p: PodJson): boolean =>
    !!p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  const list = { apiVersion: 'v1', kind: 'List', items: [pod('custom', true), pod('normal', false)] };
  await kubectlOk(['apply', '-f', '-'], JSON.stringify(list));
  // Both are scheduled; kwok makes the normal one Ready and does not touch the custom one.
  await waitFor(async () => isReady(await get('normal')), {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: 'pod normal Ready',
  });
  const custom = await waitFor(async () => ((await get('custom')).spec.nodeName ? get('custom') : undefined), {
    what: 'pod custom scheduled',
  });
  expect(custom.status.phase).toBe('Pending');
  expect(custom.status.podIP).toBeUndefined();
  expect(isReady(custom)).toBe(false);

  // A crash-looping container, as a test would drive it.
  const now = new Date().toISOString();
  const status = {
    status: {
      phase: 'Running',
      podIP: '10.0.0.99',
      conditions: [{ type: 'Ready', status: 'False', reason: 'ContainersNotReady', lastTransitionTime: now }],
      containerStatuses: [
        {
          name: 'main',
          image: 'example.invalid/x:1',
          imageID: '',
          ready: false,
          restartCount: 5,
          state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off restarting failed container' } },
        },
      ],
    },
  };
  await kubectlOk(['patch', 'pod', 'custom', '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
  const patched = await get('custom');
  expect(patched.status.phase).toBe('Running');
  expect(isReady(patched)).toBe(false);
  await kubectlOk(['delete', 'pod', 'custom', 'normal', '--wait=false']);
});

test('a ServiceAccount token (TokenRequest) authenticates, and RBAC denies it until a Role allows it', async () => {
  await kubectlOk(['create', 'serviceaccount', 'reader']);
  const token = (await kubectlOk(['create', 'token', 'reader', '--duration=10m'])).trim();
  expect(token.split('.')).toHaveLength(3);

  const who = await cp.request('/apis/authentication.k8s.io/v1/selfsubjectreviews', {
    method: 'POST',
    token,
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  expect(who.status).toBe(201);
  expect(who.body).toMatchObject({ status: { userInfo: { username: 'system:serviceaccount:default:reader' } } });

  expect((await cp.request('/api/v1/namespaces/default/pods', { token: 'not-a-token' })).status).toBe(401);
  const denied = await cp.request('/api/v1/namespaces/default/pods', { token });
  expect(denied.status).toBe(403);
  expect(JSON.stringify(denied.body)).toContain('system:serviceaccount:default:reader');

  await kubectlOk(['create', 'role', 'pod-reader', '--verb=get,list,watch', '--resource=pods']);
  await kubectlOk(['create', 'rolebinding', 'reader-pods', '--role=pod-reader', '--serviceaccount=default:reader']);
  await waitFor(async () => (await cp.request('/api/v1/namespaces/default/pods', { token })).status === 200, {
    timeoutMs: 10_000,
    what: 'RBAC to allow the ServiceAccount to list pods',
  });
  // Still only what the Role says: not in another namespace, not secrets.
  expect((await cp.request('/api/v1/namespaces/kube-system/pods', { token })).status).toBe(403);
  expect((await cp.request('/api/v1/namespaces/default/secrets', { token })).status).toBe(403);
});

test('after an API server restart the objects are still there and new Deployments still become Available', async () => {
  await createAvailable('before-restart', 1);
  const t0 = Date.now();
  await cp.restartApiServer();
  report(`API server restarted and ready in ${Date.now() - t0} ms`);

  const d = JSON.parse(await kubectlOk(['get', 'deploy', 'before-restart', '-o', 'json'])) as DeploymentJson;
  expect(d.status?.availableReplicas).toBe(1);

  const ms = await createAvailable('after-restart', 2);
  report(`2-replica Deployment Available after the restart in ${ms} ms`);
});

test('a control-plane process that exits early fails the start at once, with the end of its log', async () => {
  const t0 = Date.now();
  await expect(startControlPlane({ extraApiServerFlags: ['--no-such-flag'] })).rejects.toThrow(
    /kube-apiserver exited early[\s\S]*unknown flag: --no-such-flag/,
  );
  expect(Date.now() - t0).toBeLessThan(20_000);
});
