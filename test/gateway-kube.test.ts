/**
 * The gateway taking its rules from FunctionService objects on a real control plane (etcd, kube-apiserver,
 * controllers, kwok): `kubectl apply` a rule and the gateway follows it, live; an object the CRD accepts but
 * the gateway cannot use keeps its last good version; a delete unroutes; the gateway works with only
 * deploy/rbac/gateway.yaml (a ServiceAccount token); it recovers after the API server restarts; start()
 * fails with the fix when the CRD or the RBAC is missing.
 *
 * The gateway runs in this process (startGateway with a KubernetesRuleSource on the harness kubeconfig); the
 * function side is a plain NATS queue subscriber on the embedded broker.
 */
import path from 'node:path';
import type { NatsConnection } from '@nats-io/nats-core';
import { connectNats, serviceCallWildcard, serviceQueueGroup, silentLogger, type Logger } from '../common';
import type { KubeAccess } from '../common/kube-access';
import { accessFromSpec, loadKubeAccess } from '../common/kubeconfig';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { KubernetesRuleSource } from '../gateway/kube-rule-source';
import { buildRuleSource } from '../gateway/main';
import { BROKER_TARGETS, type RunningBroker } from './helpers/brokers';
import { startControlPlane, type ControlPlane } from './helpers/control-plane';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const repo = path.resolve(__dirname, '..');
const SYSTEM_NS = 'fnmesh-system';
const enc = new TextEncoder();

let cp: ControlPlane;
let broker: RunningBroker;
let nc: NatsConnection;
let gw: Gateway;
const gateways: Gateway[] = [];
/** What start() said when the CRD was not installed yet. */
let crdMissing: unknown;
/** Error logs of the admin gateway's rule source. */
const errors: Array<{ msg: string; meta?: Record<string, unknown> }> = [];

const recordingLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: (msg, meta) => errors.push({ msg, ...(meta ? { meta } : {}) }),
  child: () => recordingLogger,
};

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await cp.kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

function adminAccess(): KubeAccess {
  return loadKubeAccess({ kubeconfig: cp.kubeconfig, env: {} });
}

function tokenAccess(token: string): KubeAccess {
  return accessFromSpec({ server: cp.server, ca: { file: cp.caFile }, token: { data: token } });
}

function ruleSource(access: KubeAccess, extra: { namespace?: string; logger?: Logger } = {}): KubernetesRuleSource {
  return new KubernetesRuleSource({
    kubeAccess: access,
    debounceMs: 10,
    resyncMs: 5_000,
    initialBackoffMs: 200,
    maxBackoffMs: 2_000,
    syncTimeoutMs: 10_000,
    logger: extra.logger ?? silentLogger,
    ...(extra.namespace ? { namespace: extra.namespace } : {}),
  });
}

async function runGateway(source: KubernetesRuleSource): Promise<Gateway> {
  const config = loadGatewayConfig({
    FNMESH_LISTEN: '127.0.0.1:0',
    FNMESH_OPS_LISTEN: '127.0.0.1:0',
    FNMESH_NATS_URL: broker.url,
    FNMESH_SHUTDOWN_TIMEOUT_MS: '1000',
    FNMESH_RULE_SOURCE: 'kubernetes',
  });
  const g = await startGateway(config, { logger: silentLogger, ruleSource: source });
  gateways.push(g);
  return g;
}

/** Plays the function side of a service: answers every call with its name. */
function serveService(namespace: string, service: string): void {
  nc.subscribe(serviceCallWildcard(namespace, service), {
    queue: serviceQueueGroup(namespace, service),
    callback: (_err, msg) => {
      msg.respond(enc.encode(JSON.stringify({ service, fn: msg.subject.split('.').pop() })));
    },
  });
}

async function call(g: Gateway, target: string, namespace = 'default'): Promise<number> {
  const res = await fetch(`${g.url}/v1/api/${namespace}/functions/${target}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ params: null }),
  });
  await res.text();
  return res.status;
}

async function until(
  g: Gateway,
  target: string,
  status: number,
  what: string,
  namespace = 'default',
  timeoutMs = 10_000,
): Promise<number> {
  const started = Date.now();
  await waitFor(async () => (await call(g, target, namespace)) === status, { timeoutMs, intervalMs: 10, what });
  return Date.now() - started;
}

function manifest(name: string, rule: unknown, namespace = 'default'): string {
  return JSON.stringify({
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: { name, namespace },
    spec: { functions: [{ name: 'go', rule }] },
  });
}

const apply = (text: string): Promise<string> => kubectl(['apply', '-f', '-'], text);

beforeAll(async () => {
  cp = await startControlPlane();
  // Before the CRD exists: start() must say so, with the fix.
  const early = ruleSource(adminAccess());
  crdMissing = await early
    .start(() => undefined)
    .then(
      () => undefined,
      (err: unknown) => err,
    );
  await kubectl(['apply', '-f', path.join(repo, 'crds')]);
  await kubectl(['wait', '--for=condition=Established', 'crd/functionservices.fnmesh.io', '--timeout=60s']);
  await kubectl(['create', 'namespace', SYSTEM_NS]);
  await kubectl(['create', 'namespace', 'team-a']);
  broker = await BROKER_TARGETS[1]!.start();
  nc = await connectNats({ servers: [broker.url], name: 'test-functions', logger: silentLogger });
  for (const s of ['rules', 'other', 'sa', 'restart']) serveService('default', s);
  serveService('team-a', 'scoped');
  await nc.flush();
  gw = await runGateway(ruleSource(adminAccess(), { logger: recordingLogger }));
}, 300_000);

afterAll(async () => {
  for (const g of gateways.reverse()) await g.stop();
  await nc?.close();
  await broker?.stop();
  await cp?.stop();
});

test('start() without the CRD installed fails with the fix', () => {
  expect(crdMissing).toBeInstanceOf(Error);
  expect((crdMissing as Error).message).toMatch(
    /^cannot list FunctionServices in all namespaces of https:\/\/127\.0\.0\.1:\d+: the FunctionService CRD is not installed: kubectl apply -f crds\//,
  );
});

test('rules follow kubectl apply: deny → 403, edit to allow → 200, an invalid edit keeps the last good version, delete → 404', async () => {
  expect(await call(gw, 'rules/go')).toBe(404);
  await apply(manifest('rules', { rule: 'deny' }));
  const denyMs = await until(gw, 'rules/go', 403, 'the deny rule');
  await apply(manifest('rules', { rule: 'allow' }));
  const allowMs = await until(gw, 'rules/go', 200, 'the allow rule');
  console.error(`gateway followed kubectl apply: deny in ${denyMs} ms, allow in ${allowMs} ms (including kubectl)`);

  // The CRD accepts any JSON as an operand (x-kubernetes-preserve-unknown-fields); the gateway's schema does not.
  const errorsBefore = errors.length;
  await apply(manifest('rules', { rule: 'match', type: 'string', eval: '==', f1: { not: 'an operand' }, f2: 'x' }));
  await waitFor(() => errors.slice(errorsBefore).find((e) => e.meta?.service === 'default/rules'), {
    what: 'the invalid version to be logged',
  });
  const logged = errors.slice(errorsBefore).find((e) => e.meta?.service === 'default/rules')!;
  expect(logged.msg).toBe('a FunctionService is not valid for the gateway; its last good version stays in use');
  expect(logged.meta?.error).toMatch(
    /^functionservice default\/rules: invalid FunctionService: spec\.functions\[go\]\.rule\.f1: \{"not":"an operand"\} is not an operand/,
  );
  expect(await call(gw, 'rules/go')).toBe(200);

  await kubectl(['delete', 'functionservice', 'rules', '-n', 'default']);
  await until(gw, 'rules/go', 404, 'the deleted service to be unrouted');
});

test('a burst of applies reaches the gateway as a whole', async () => {
  const docs = Array.from({ length: 20 }, (_, i) => manifest(`burst-${i}`, { rule: 'allow' })).join('\n');
  await apply(docs);
  await waitFor(() => [...gw.registry().services.keys()].filter((k) => k.startsWith('default/burst-')).length === 20, {
    what: 'all 20 services routed',
  });
  await kubectl(['delete', 'functionservice', ...Array.from({ length: 20 }, (_, i) => `burst-${i}`)]);
  await waitFor(() => [...gw.registry().services.keys()].every((k) => !k.startsWith('default/burst-')), {
    what: 'all 20 services unrouted',
  });
});

test('FNMESH_WATCH_NAMESPACE: a gateway watching one namespace routes only its services', async () => {
  const scoped = await runGateway(ruleSource(adminAccess(), { namespace: 'team-a' }));
  await apply(manifest('scoped', { rule: 'allow' }, 'team-a'));
  await apply(manifest('other', { rule: 'allow' }));
  await until(scoped, 'scoped/go', 200, 'team-a/scoped through the scoped gateway', 'team-a');
  await until(gw, 'other/go', 200, 'default/other through the cluster-wide gateway');
  expect(await call(scoped, 'other/go')).toBe(404);
  expect([...scoped.registry().services.keys()]).toEqual(['team-a/scoped']);
});

describe('with only deploy/rbac/gateway.yaml (a ServiceAccount token)', () => {
  let token: string;

  beforeAll(async () => {
    await kubectl(['apply', '-f', path.join(repo, 'deploy', 'rbac', 'gateway.yaml')]);
    token = (await kubectl(['create', 'token', 'fnmesh-gateway', '-n', SYSTEM_NS, '--duration=1h'])).trim();
  });

  test('the RBAC grants reading FunctionServices and nothing more', async () => {
    const as = ['--as', `system:serviceaccount:${SYSTEM_NS}:fnmesh-gateway`];
    for (const verb of ['get', 'list', 'watch'])
      expect((await kubectl(['auth', 'can-i', verb, 'functionservices.fnmesh.io', '-A', ...as])).trim()).toBe('yes');
    for (const args of [
      ['create', 'functionservices.fnmesh.io'],
      ['patch', 'functionservices.fnmesh.io', '--subresource=status'],
      ['list', 'deployments.apps'],
      ['list', 'secrets'],
    ]) {
      const r = await cp.kubectl(['auth', 'can-i', ...args, '-A', ...as]);
      expect(r.stdout.trim()).toBe('no');
    }
  });

  test('the gateway runs on the ServiceAccount token and follows edits', async () => {
    const saGw = await runGateway(ruleSource(tokenAccess(token)));
    await apply(manifest('sa', { rule: 'deny' }));
    await until(saGw, 'sa/go', 403, 'the deny rule through the ServiceAccount gateway');
    await apply(manifest('sa', { rule: 'allow' }));
    await until(saGw, 'sa/go', 200, 'the allow rule through the ServiceAccount gateway');
  });

  test('a ServiceAccount without the binding: start() fails with the RBAC fix', async () => {
    await kubectl(['create', 'serviceaccount', 'nobody', '-n', SYSTEM_NS]);
    const nobody = (await kubectl(['create', 'token', 'nobody', '-n', SYSTEM_NS, '--duration=1h'])).trim();
    const source = ruleSource(tokenAccess(nobody));
    const started = Date.now();
    await expect(source.start(() => undefined)).rejects.toThrow(
      /the gateway's ServiceAccount may not list\/watch functionservices: apply deploy\/rbac\/gateway\.yaml \(the API server answered 403: .*forbidden/,
    );
    // Terminal: no waiting for the sync timeout.
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

test('after the API server restarts, later edits still reach the gateway (the informer recovers)', async () => {
  await apply(manifest('restart', { rule: 'allow' }));
  await until(gw, 'restart/go', 200, 'the allow rule before the restart');
  const t0 = Date.now();
  await cp.restartApiServer();
  const restartMs = Date.now() - t0;
  // Routing keeps working from the cache while the watch is down and back.
  expect(await call(gw, 'restart/go')).toBe(200);
  await apply(manifest('restart', { rule: 'deny' }));
  const followMs = await until(gw, 'restart/go', 403, 'the deny rule after the API server restart', 'default', 30_000);
  await kubectl(['delete', 'functionservice', 'restart']);
  await until(gw, 'restart/go', 404, 'the delete after the API server restart', 'default', 30_000);
  console.error(
    `API server restart took ${restartMs} ms; the gateway followed the next edit ${followMs} ms after kubectl apply returned`,
  );
});

describe('gateway configuration (FNMESH_RULE_SOURCE)', () => {
  test('kubernetes with FNMESH_MANIFESTS set is refused: choose one', () => {
    expect(() => loadGatewayConfig({ FNMESH_RULE_SOURCE: 'kubernetes', FNMESH_MANIFESTS: 'examples/' })).toThrow(
      /FNMESH_RULE_SOURCE=kubernetes and FNMESH_MANIFESTS are both set: choose one source of rules/,
    );
    expect(() => loadGatewayConfig({ FNMESH_RULE_SOURCE: 'k8s' })).toThrow(
      'FNMESH_RULE_SOURCE="k8s" is not valid: it accepts one of files, kubernetes',
    );
    expect(() => loadGatewayConfig({ FNMESH_RULE_SOURCE: 'kubernetes', FNMESH_WATCH_NAMESPACE: 'Bad_NS' })).toThrow(
      /FNMESH_WATCH_NAMESPACE="Bad_NS" is not a valid namespace name/,
    );
  });

  test('defaults to files; kubernetes reads FNMESH_KUBECONFIG and FNMESH_WATCH_NAMESPACE', async () => {
    expect(loadGatewayConfig({ FNMESH_MANIFESTS: 'a.yaml,b/' })).toMatchObject({
      ruleSource: 'files',
      manifests: ['a.yaml', 'b/'],
    });
    const c = loadGatewayConfig({
      FNMESH_RULE_SOURCE: 'kubernetes',
      FNMESH_KUBECONFIG: cp.kubeconfig,
      FNMESH_WATCH_NAMESPACE: 'team-a',
    });
    expect(c).toMatchObject({
      ruleSource: 'kubernetes',
      manifests: [],
      kubeconfig: cp.kubeconfig,
      watchNamespace: 'team-a',
    });
    const source = await buildRuleSource(c, silentLogger, {});
    expect(source).toBeInstanceOf(KubernetesRuleSource);
  });

  test('kubernetes with a missing kubeconfig, or none at all, is refused with the fix', async () => {
    const c = loadGatewayConfig({ FNMESH_RULE_SOURCE: 'kubernetes', FNMESH_KUBECONFIG: '/nonexistent/kubeconfig' });
    await expect(buildRuleSource(c, silentLogger, {})).rejects.toThrow(
      'FNMESH_KUBECONFIG="/nonexistent/kubeconfig" does not exist',
    );
    const none = loadGatewayConfig({ FNMESH_RULE_SOURCE: 'kubernetes' });
    await expect(buildRuleSource(none, silentLogger, { HOME: '/nonexistent' })).rejects.toThrow(
      /no Kubernetes configuration was found: set FNMESH_KUBECONFIG or KUBECONFIG/,
    );
  });
});
