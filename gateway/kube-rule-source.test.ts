import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InformerLike } from '../common/kube-informer';
import { accessFromSpec } from '../common/kubeconfig';
import { silentLogger, type Logger } from '../common/logger';
import type { FunctionService } from '../common/manifest';
import {
  Debouncer,
  KubernetesRuleSource,
  describeListError,
  slimObject,
  toFunctionService,
  type FunctionServiceObject,
} from './kube-rule-source';

function fsObject(name: string, rv: string, spec: unknown, namespace = 'default'): FunctionServiceObject {
  return {
    apiVersion: 'fnmesh.io/v1alpha1',
    kind: 'FunctionService',
    metadata: {
      name,
      namespace,
      uid: `uid-${name}`,
      resourceVersion: rv,
      generation: 1,
      creationTimestamp: new Date(0),
      managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    },
    spec,
    status: { observedGeneration: 1, conditions: [] },
  };
}

const allow = { functions: [{ name: 'go', rule: { rule: 'allow' } }] };
const deny = { functions: [{ name: 'go', rule: { rule: 'deny' } }] };
/** The CRD has no say on this (it is checked after the schema): a function listed twice. */
const twice = { functions: [{ name: 'go' }, { name: 'go' }] };

describe('toFunctionService', () => {
  test('converts an API object: defaults filled, metadata kept, managedFields and status dropped', () => {
    const fs = toFunctionService(fsObject('greeter', '7', allow));
    expect(fs.metadata).toEqual({
      name: 'greeter',
      namespace: 'default',
      generation: 1,
      uid: 'uid-greeter',
      resourceVersion: '7',
      annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
    });
    expect(fs.spec).toMatchObject({
      replicas: 1,
      timeoutMs: 10_000,
      functions: [{ name: 'go', rule: { rule: 'allow' } }],
    });
    expect(fs.status).toBeUndefined();
  });

  test('an object without apiVersion/kind (some list items) is still read', () => {
    const obj = fsObject('x', '1', allow);
    delete obj.apiVersion;
    delete obj.kind;
    expect(toFunctionService(obj).kind).toBe('FunctionService');
  });

  test('an invalid object names its namespace/name and the field', () => {
    expect(() =>
      toFunctionService(fsObject('bad', '1', { functions: [{ name: 'go', rule: { rule: 'nope' } }] }, 'team-a')),
    ).toThrow(
      /^functionservice team-a\/bad: invalid FunctionService: spec\.functions\[go\]\.rule\.rule: "nope" is not a rule type/,
    );
    expect(() => toFunctionService(fsObject('bad', '1', twice))).toThrow(/function "go" is listed twice/);
  });
});

describe('describeListError', () => {
  const where = 'in all namespaces of https://k';
  test.each([
    [
      { code: 404, body: '{"kind":"Status","message":"the server could not find the requested resource"}' },
      true,
      /the FunctionService CRD is not installed: kubectl apply -f crds\/.*could not find/,
    ],
    [{ statusCode: 403 }, true, /apply deploy\/rbac\/gateway\.yaml/],
    [{ code: 401 }, true, /refused the gateway's credentials/],
    [
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      false,
      /not reachable.*ECONNREFUSED.*FNMESH_KUBECONFIG/,
    ],
    [{ code: 500, body: { message: 'etcd down' } }, false, /HTTP 500: etcd down/],
  ])('%j', (err, terminal, message) => {
    const d = describeListError(err, where);
    expect(d.terminal).toBe(terminal);
    expect(d.message).toMatch(message);
    expect(d.message).toContain(where);
  });
});

describe('Debouncer', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a burst of triggers runs once, after the delay; flush runs at once; cancel drops', () => {
    const fn = jest.fn();
    const d = new Debouncer(20, fn);
    for (let i = 0; i < 10; i++) d.trigger();
    expect(fn).not.toHaveBeenCalled();
    jest.advanceTimersByTime(20);
    expect(fn).toHaveBeenCalledTimes(1);
    d.trigger();
    d.flush();
    expect(fn).toHaveBeenCalledTimes(2);
    jest.advanceTimersByTime(50);
    expect(fn).toHaveBeenCalledTimes(2);
    d.trigger();
    d.cancel();
    jest.advanceTimersByTime(50);
    expect(fn).toHaveBeenCalledTimes(2);
  });
});

/** An informer whose list and events the test drives. */
class FakeInformer implements InformerLike<FunctionServiceObject> {
  handlers: Record<string, Array<(x: never) => void>> = {};
  objects = new Map<string, FunctionServiceObject>();
  constructor(
    private readonly initial: FunctionServiceObject[],
    private readonly failWith?: unknown,
  ) {}
  on(verb: string, cb: (x: never) => void): void {
    (this.handlers[verb] ??= []).push(cb);
  }
  private fire(verb: string, x: unknown): void {
    for (const cb of this.handlers[verb] ?? []) cb(x as never);
  }
  async start(): Promise<void> {
    if (this.failWith !== undefined) {
      this.fire('error', this.failWith);
      return;
    }
    for (const o of this.initial) this.set(o);
  }
  async stop(): Promise<void> {}
  list(): ReadonlyArray<FunctionServiceObject> {
    return [...this.objects.values()];
  }
  get(name: string, namespace?: string): FunctionServiceObject | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }
  set(o: FunctionServiceObject): void {
    const key = `${o.metadata!.namespace}/${o.metadata!.name}`;
    const had = this.objects.has(key);
    this.objects.set(key, o);
    this.fire(had ? 'update' : 'add', o);
  }
  remove(o: FunctionServiceObject): void {
    this.objects.delete(`${o.metadata!.namespace}/${o.metadata!.name}`);
    this.fire('delete', o);
  }
}

const kubeAccess = accessFromSpec({ server: 'https://127.0.0.1:1', token: { data: 't' } });

const rulesOf = (services: FunctionService[]): Record<string, unknown> =>
  Object.fromEntries(
    services.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s.spec.functions[0]?.rule?.rule]),
  );

describe('KubernetesRuleSource (fake informer)', () => {
  const logs: Array<{ msg: string; meta: unknown }> = [];
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (msg, meta) => logs.push({ msg, meta }),
    child: () => logger,
  };
  let source: KubernetesRuleSource | undefined;
  afterEach(async () => {
    await source?.stop();
    source = undefined;
    logs.length = 0;
  });

  function make(informer: FakeInformer, syncTimeoutMs = 2000): KubernetesRuleSource {
    source = new KubernetesRuleSource({
      kubeAccess,
      logger,
      debounceMs: 15,
      informerFactory: () => informer,
      syncTimeoutMs,
      initialBackoffMs: 10,
    });
    return source;
  }

  test('start emits the listed set once; a burst of events emits once; deletes remove; invalid keeps the last good version', async () => {
    const inf = new FakeInformer([fsObject('a', '1', allow), fsObject('b', '1', deny, 'team')]);
    const calls: FunctionService[][] = [];
    await make(inf).start((s) => calls.push(s));
    expect(calls).toHaveLength(1);
    expect(rulesOf(calls[0]!)).toEqual({ 'default/a': 'allow', 'team/b': 'deny' });

    inf.set(fsObject('a', '2', deny));
    inf.set(fsObject('c', '1', allow));
    inf.remove(fsObject('b', '1', deny, 'team'));
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(2);
    expect(rulesOf(calls[1]!)).toEqual({ 'default/a': 'deny', 'default/c': 'allow' });

    // A version the gateway cannot use: logged with its name and field, the last good one stays.
    inf.set(fsObject('a', '3', twice));
    await new Promise((r) => setTimeout(r, 60));
    expect(rulesOf(calls.at(-1)!)).toEqual({ 'default/a': 'deny', 'default/c': 'allow' });
    expect(logs).toEqual([
      {
        msg: 'a FunctionService is not valid for the gateway; its last good version stays in use',
        meta: expect.objectContaining({ service: 'default/a', error: expect.stringMatching(/listed twice/) }),
      },
    ]);
    // A new object that never validated is not routed.
    inf.set(fsObject('d', '1', twice));
    await new Promise((r) => setTimeout(r, 60));
    expect(Object.keys(rulesOf(calls.at(-1)!))).toEqual(['default/a', 'default/c']);
    // Fixed: the new version replaces the last good one.
    inf.set(fsObject('a', '4', allow));
    await new Promise((r) => setTimeout(r, 60));
    expect(rulesOf(calls.at(-1)!)).toEqual({ 'default/a': 'allow', 'default/c': 'allow' });
  });

  test('a resync that re-delivers unchanged objects emits nothing and logs nothing again', async () => {
    const inf = new FakeInformer([fsObject('a', '1', allow), fsObject('bad', '1', twice)]);
    const calls: FunctionService[][] = [];
    await make(inf).start((s) => calls.push(s));
    expect(logs).toHaveLength(1);
    for (const o of inf.list()) for (const cb of inf.handlers.update ?? []) cb(o as never);
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toHaveLength(1);
    expect(logs).toHaveLength(1);
  });

  test('start rejects at once, with the fix, when the CRD is not installed or RBAC forbids the list', async () => {
    await expect(make(new FakeInformer([], { code: 404 })).start(() => undefined)).rejects.toThrow(
      'cannot list FunctionServices in all namespaces of https://127.0.0.1:1: the FunctionService CRD is not installed: kubectl apply -f crds/',
    );
    await expect(make(new FakeInformer([], { statusCode: 403 })).start(() => undefined)).rejects.toThrow(
      /apply deploy\/rbac\/gateway\.yaml/,
    );
  });

  test('start retries an unreachable API server until the sync timeout, then rejects naming the problem', async () => {
    const started = Date.now();
    await expect(
      make(new FakeInformer([], Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 300).start(
        () => undefined,
      ),
    ).rejects.toThrow(/not reachable or failing \(connect ECONNREFUSED\)/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe('what the informer caches', () => {
  test('an object without its status and managedFields; what the conversion reads is kept', () => {
    const obj = fsObject('a', '1', allow);
    const slim = slimObject(obj);
    expect(slim).not.toHaveProperty('status');
    expect(slim.metadata).not.toHaveProperty('managedFields');
    expect(toFunctionService(slim)).toEqual(toFunctionService(obj));
  });
});

describe('memory: the gateway on a token kubeconfig never loads @kubernetes/client-node', () => {
  test('buildRuleSource makes the Kubernetes rule source without it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'rule-source-'));
    let loads = 0;
    jest.doMock('@kubernetes/client-node', () => {
      loads++;
      return jest.requireActual('@kubernetes/client-node');
    });
    try {
      const file = path.join(dir, 'kubeconfig');
      writeFileSync(
        file,
        JSON.stringify({
          'current-context': 'c',
          contexts: [{ name: 'c', context: { cluster: 'k', user: 'u' } }],
          clusters: [{ name: 'k', cluster: { server: 'https://127.0.0.1:1' } }],
          users: [{ name: 'u', user: { token: 't' } }],
        }),
      );
      let built: object | undefined;
      await jest.isolateModulesAsync(async () => {
        /* eslint-disable @typescript-eslint/no-require-imports */
        const { buildRuleSource } = require('./main') as typeof import('./main');
        const { loadGatewayConfig } = require('./config') as typeof import('./config');
        /* eslint-enable @typescript-eslint/no-require-imports */
        const config = loadGatewayConfig({ FNMESH_RULE_SOURCE: 'kubernetes', FNMESH_KUBECONFIG: file });
        built = await buildRuleSource(config, silentLogger, {});
      });
      expect(built?.constructor.name).toBe('KubernetesRuleSource');
      expect(loads).toBe(0);
    } finally {
      jest.dontMock('@kubernetes/client-node');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
