import path from 'node:path';
import { parseFunctionService, type FunctionService } from '../common/manifest';
import { NO_LOCAL_COMMAND, desiredState, diff, replicaId, type RunningState } from './plan';

function fsvc(name: string, spec: Record<string, unknown>, namespace = 'default'): FunctionService {
  return parseFunctionService(
    { apiVersion: 'fnmesh.io/v1alpha1', kind: 'FunctionService', metadata: { name, namespace }, spec },
    `${name}.yaml`,
  );
}

const local = { command: ['node', 'index.js'] };

describe('desiredState', () => {
  it('resolves spec.local.cwd against the manifest folder and skips services without spec.local', () => {
    const state = desiredState(
      [
        {
          service: fsvc('greeter', { replicas: 2, local: { ...local, cwd: '../app' }, functions: [{ name: 'hello' }] }),
          file: '/m/greeter/greeter.yaml',
        },
        { service: fsvc('text', { local: { command: ['python3', 'server.py'] } }), file: '/m/text/text.yaml' },
        { service: fsvc('remote', { container: { image: 'x' } }) },
      ],
      '/base',
    );
    expect([...state.services.keys()]).toEqual(['default/greeter', 'default/text']);
    const greeter = state.services.get('default/greeter')!;
    expect(greeter.cwd).toBe(path.resolve('/m/app'));
    expect(greeter.replicas).toBe(2);
    expect(greeter.functions).toEqual(['hello']);
    expect(state.services.get('default/text')!.cwd).toBe(path.resolve('/m/text'));
    expect(state.skipped).toEqual([{ key: 'default/remote', reason: NO_LOCAL_COMMAND }]);
  });

  it('uses the base folder when the manifest file is unknown', () => {
    const state = desiredState([{ service: fsvc('a', { local }) }], '/base');
    expect(state.services.get('default/a')!.cwd).toBe(path.resolve('/base'));
  });

  it('changes the fingerprint for command, env, functions, port, limits, queue and outlier detection, not for rules, retries or replicas', () => {
    const fp = (spec: Record<string, unknown>): string =>
      desiredState([{ service: fsvc('a', { local, ...spec }), file: '/m/a.yaml' }], '/').services.get('default/a')!
        .fingerprint;
    const base = fp({ functions: [{ name: 'f', rule: { rule: 'allow' } }] });
    expect(fp({ functions: [{ name: 'f', rule: { rule: 'deny' } }] })).toBe(base);
    expect(fp({ replicas: 5, functions: [{ name: 'f', rule: { rule: 'allow' } }] })).toBe(base);
    expect(fp({ functions: [{ name: 'f' }, { name: 'g' }] })).not.toBe(base);
    expect(fp({ port: 9000, functions: [{ name: 'f' }] })).not.toBe(base);
    expect(fp({ concurrency: 3, functions: [{ name: 'f' }] })).not.toBe(base);
    expect(fp({ queueLength: 3, functions: [{ name: 'f' }] })).not.toBe(base);
    expect(fp({ outlierDetection: { consecutiveFailures: 2 }, functions: [{ name: 'f' }] })).not.toBe(base);
    // The gateway's settings reach it through the manifest, not through the replicas' processes.
    expect(
      fp({ retry: { attempts: 2 }, circuitBreaker: { openMs: 9 }, functions: [{ name: 'f', idempotent: true }] }),
    ).toBe(base);
    expect(fp({ timeoutMs: 3, functions: [{ name: 'f' }] })).not.toBe(base);
    expect(fp({ local: { command: ['node', 'other.js'] }, functions: [{ name: 'f' }] })).not.toBe(base);
    expect(fp({ local: { ...local, env: { A: '1' } }, functions: [{ name: 'f' }] })).not.toBe(base);
  });
});

describe('diff', () => {
  const plans = (replicas: Record<string, number>, changed: string[] = []) =>
    desiredState(
      Object.entries(replicas).map(([name, n]) => ({
        service: fsvc(name, { replicas: n, local: changed.includes(name) ? { command: ['node', 'v2.js'] } : local }),
        file: `/m/${name}.yaml`,
      })),
      '/',
    ).services;
  const running = (
    entries: Record<string, number[]>,
    fingerprints = plans(Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, v.length]))),
  ): RunningState =>
    new Map(
      Object.entries(entries).map(([name, idx]) => [
        `default/${name}`,
        idx.map((index) => ({ index, fingerprint: fingerprints.get(`default/${name}`)?.fingerprint ?? 'old' })),
      ]),
    );

  it('starts every replica from nothing', () => {
    expect(diff(plans({ a: 2, b: 1 }), new Map())).toEqual([
      { type: 'start', key: 'default/a', index: 0 },
      { type: 'start', key: 'default/a', index: 1 },
      { type: 'start', key: 'default/b', index: 0 },
    ]);
  });

  it('does nothing when running matches desired', () => {
    expect(diff(plans({ a: 2 }), running({ a: [0, 1] }))).toEqual([]);
  });

  it('scales up with new indices and down from the highest index', () => {
    expect(diff(plans({ a: 3 }), running({ a: [0, 1] }))).toEqual([{ type: 'start', key: 'default/a', index: 2 }]);
    expect(diff(plans({ a: 1 }), running({ a: [0, 1, 2] }))).toEqual([
      { type: 'stop', key: 'default/a', index: 2 },
      { type: 'stop', key: 'default/a', index: 1 },
    ]);
  });

  it('stops every replica of a removed service, and of a service scaled to 0', () => {
    expect(diff(plans({ b: 0 }), running({ a: [0, 1], b: [0] }))).toEqual([
      { type: 'stop', key: 'default/a', index: 1 },
      { type: 'stop', key: 'default/a', index: 0 },
      { type: 'stop', key: 'default/b', index: 0 },
    ]);
  });

  it('restarts replicas whose spec changed, lowest index first, after stops and starts', () => {
    const desired = plans({ a: 3 }, ['a']);
    const old = plans({ a: 2 });
    expect(diff(desired, running({ a: [0, 1] }, old))).toEqual([
      { type: 'start', key: 'default/a', index: 2 },
      { type: 'restart', key: 'default/a', index: 0 },
      { type: 'restart', key: 'default/a', index: 1 },
    ]);
  });

  it('refills a missing index in the middle', () => {
    expect(diff(plans({ a: 3 }), running({ a: [0, 2] }))).toEqual([{ type: 'start', key: 'default/a', index: 1 }]);
  });
});

describe('replicaId', () => {
  it('is service-index in the default namespace and namespaced otherwise', () => {
    expect(replicaId({ namespace: 'default', service: 'greeter' }, 0)).toBe('greeter-0');
    expect(replicaId({ namespace: 'shop', service: 'cart' }, 2)).toBe('shop-cart-2');
  });
});
