import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SETTINGS, flagsToEnv, run } from './main';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { env: {}, out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) }, out, err };
}

describe('fnmesh CLI', () => {
  it('maps flags onto the FNMESH_* variables, flags winning over env', () => {
    const env = flagsToEnv({ listen: '0.0.0.0:9090', natsUrl: 'nats://n:4222', jwtSecret: 's' }, SETTINGS.gateway, {
      FNMESH_LISTEN: '1.2.3.4:1',
      OTHER: 'x',
    });
    expect(env).toMatchObject({
      FNMESH_LISTEN: '0.0.0.0:9090',
      FNMESH_NATS_URL: 'nats://n:4222',
      FNMESH_JWT_SECRET: 's',
      OTHER: 'x',
    });
    expect(flagsToEnv({ functionPort: '3000', replicaId: 'a-0' }, SETTINGS.sidecar, {})).toEqual({
      FNMESH_FUNCTION_PORT: '3000',
      FNMESH_REPLICA_ID: 'a-0',
    });
  });

  it('--kubeconfig is FNMESH_KUBECONFIG for the gateway and the operator alike', () => {
    for (const flags of [SETTINGS.gateway, SETTINGS.operator])
      expect(flagsToEnv({ kubeconfig: '/k' }, flags, { KUBECONFIG: '/other' })).toEqual({
        FNMESH_KUBECONFIG: '/k',
        KUBECONFIG: '/other',
      });
  });

  it('exits 2 with a clear error on an unknown flag or command', async () => {
    const a = io();
    expect(await run(['--bogus'], a.io)).toBe(2);
    expect(a.err.join('')).toContain("unknown option '--bogus'");
    const b = io();
    expect(await run(['deploy'], b.io)).toBe(2);
    expect(b.err.join('')).toContain("unknown command 'deploy'");
    const c = io();
    expect(await run(['gateway', '--lisen', 'x'], c.io)).toBe(2);
    expect(c.err.join('')).toContain('--lisen');
  });

  it('prints the version and help with status 0', async () => {
    const a = io();
    expect(await run(['--version'], a.io)).toBe(0);
    expect(a.out.join('')).toMatch(/^\d+\.\d+\.\d+/);
    const b = io();
    expect(await run(['--help'], b.io)).toBe(0);
    expect(b.out.join('')).toContain('validate');
  });

  it('validate: accepts the examples and reports file and field of each error (status 1)', async () => {
    const ok = io();
    expect(await run(['validate', path.join(__dirname, '..', 'examples')], ok.io)).toBe(0);
    expect(ok.out.join('')).toContain('default/greeter');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-validate-'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      [
        'apiVersion: fnmesh.io/v1alpha1',
        'kind: FunctionService',
        'metadata: { name: shop }',
        'spec:',
        '  replicas: -1',
        '  functions: [{ name: f }]',
      ].join('\n'),
    );
    const badRule = path.join(dir, 'rule.yml');
    writeFileSync(
      badRule,
      [
        'apiVersion: fnmesh.io/v1alpha1',
        'kind: FunctionService',
        'metadata: { name: cart }',
        'spec:',
        '  functions:',
        '    - name: add',
        '      rule: { rule: match, type: string, eval: ==, f1: args.auht.sub, f2: x }',
      ].join('\n'),
    );
    const r = io();
    expect(await run(['validate', dir], r.io)).toBe(1);
    const text = r.err.join('');
    expect(text).toContain(`${bad}: invalid FunctionService: spec.replicas`);
    expect(text).toContain(badRule);
    expect(text).toContain('spec.functions[add].rule');
    expect(text).toContain('2 error(s)');
  });

  it('validate: a missing path is an error', async () => {
    const r = io();
    expect(await run(['validate', '/nonexistent/fnmesh'], r.io)).toBe(1);
    expect(r.err.join('')).toContain('/nonexistent/fnmesh: no such file or folder');
  });
});
