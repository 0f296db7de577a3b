import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from './errors';
import {
  accessFromSpec,
  credentialsOf,
  findAccessSpec,
  inClusterSpec,
  loadKubeAccess,
  specFromKubeconfig,
} from './kubeconfig';

const kubeconfig = (
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = { server: 'https://10.0.0.1:6443/' },
) => ({
  apiVersion: 'v1',
  kind: 'Config',
  'current-context': 'c',
  contexts: [
    { name: 'other', context: { cluster: 'x', user: 'x' } },
    { name: 'c', context: { cluster: 'k', user: 'u' } },
  ],
  clusters: [{ name: 'k', cluster }],
  users: [{ name: 'u', user }],
});

describe('specFromKubeconfig', () => {
  test('a token user with an inline CA, the current context only', () => {
    const r = specFromKubeconfig(
      kubeconfig(
        { token: 'abc' },
        {
          server: 'https://10.0.0.1:6443/',
          'certificate-authority-data': Buffer.from('CA').toString('base64'),
          'tls-server-name': 'kubernetes',
        },
      ),
      '/cfg',
      'f',
    );
    expect(r).toEqual({
      kind: 'spec',
      source: 'f',
      spec: {
        server: 'https://10.0.0.1:6443',
        tlsServerName: 'kubernetes',
        ca: { data: Buffer.from('CA') },
        token: { data: 'abc' },
      },
    });
  });

  test('files are relative to the kubeconfig; client certificates, a token file, insecure, a proxy', () => {
    const r = specFromKubeconfig(
      kubeconfig(
        { 'client-certificate': 'c.crt', 'client-key': '/abs/c.key', tokenFile: 'tok' },
        {
          server: 'https://k:6443',
          'certificate-authority': 'ca.crt',
          'insecure-skip-tls-verify': true,
          'proxy-url': 'http://proxy:3128',
        },
      ),
      '/cfg',
      'f',
    );
    expect(r.kind === 'spec' && r.spec).toEqual({
      server: 'https://k:6443',
      proxyUrl: 'http://proxy:3128',
      insecureSkipTlsVerify: true,
      ca: { file: '/cfg/ca.crt' },
      cert: { file: '/cfg/c.crt' },
      key: { file: '/abs/c.key' },
      token: { file: '/cfg/tok' },
    });
  });

  test.each([
    ['exec', { exec: { command: 'aws' } }],
    ['auth-provider', { 'auth-provider': { name: 'oidc' } }],
    ['as', { token: 't', as: 'someone' }],
  ])('a user with %s is left to client-node', (field, user) => {
    const r = specFromKubeconfig(kubeconfig(user), '/cfg', 'f');
    expect(r).toEqual({ kind: 'unsupported', reason: expect.stringContaining(field) });
  });

  test('a kubeconfig without a usable current context is unsupported, naming why', () => {
    expect(specFromKubeconfig({ contexts: [] }, '/', 'f')).toEqual({
      kind: 'unsupported',
      reason: 'f has no current-context',
    });
    expect(specFromKubeconfig({ ...kubeconfig({}), 'current-context': 'nope' }, '/', 'f')).toEqual({
      kind: 'unsupported',
      reason: 'f has no context nope',
    });
    expect(specFromKubeconfig(kubeconfig({}, {}), '/', 'f').kind).toBe('unsupported');
  });
});

describe('inClusterSpec', () => {
  test('the service account files and the service address (IPv6 in brackets; plain HTTP ports as client-node)', () => {
    expect(inClusterSpec('10.96.0.1', '443', '/sa')).toEqual({
      server: 'https://10.96.0.1:443',
      ca: { file: '/sa/ca.crt' },
      token: { file: '/sa/token' },
    });
    expect(inClusterSpec('fd00::1', '443', '/sa').server).toBe('https://[fd00::1]:443');
    expect(inClusterSpec('h', '8080', '/sa').server).toBe('http://h:8080');
  });
});

describe('findAccessSpec and credentials', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-test-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  test('KUBECONFIG naming one file; several files are left to client-node', () => {
    const file = write('config', JSON.stringify(kubeconfig({ token: 't' })));
    expect(findAccessSpec({ KUBECONFIG: file }).kind).toBe('spec');
    expect(findAccessSpec({ KUBECONFIG: `${file}${path.delimiter}${file}` })).toEqual({
      kind: 'unsupported',
      reason: expect.stringContaining('several files'),
      files: [file, file],
    });
  });

  test('~/.kube/config when KUBECONFIG is unset, else the service account when in a pod', () => {
    mkdirSync(path.join(dir, 'home', '.kube'), { recursive: true });
    writeFileSync(path.join(dir, 'home', '.kube', 'config'), JSON.stringify(kubeconfig({ token: 't' })));
    expect(findAccessSpec({ HOME: path.join(dir, 'home') })).toMatchObject({
      kind: 'spec',
      source: path.join(dir, 'home', '.kube', 'config'),
    });
    write('token', 'sa-token\n');
    const inPod = findAccessSpec(
      { HOME: path.join(dir, 'nohome'), KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' },
      { serviceAccountDir: dir },
    );
    expect(inPod).toMatchObject({ kind: 'spec', spec: { server: 'https://10.96.0.1:443' } });
    expect(findAccessSpec({ HOME: path.join(dir, 'nohome') }, { serviceAccountDir: dir }).kind).toBe('none');
  });

  test('credentials: a bearer token from a file (trimmed), TLS from files, basic auth', () => {
    write('tok', 'file-token\n');
    write('ca.crt', 'CA');
    const creds = credentialsOf({
      server: 'https://k',
      token: { file: path.join(dir, 'tok') },
      ca: { file: path.join(dir, 'ca.crt') },
      insecureSkipTlsVerify: true,
      tlsServerName: 'n',
    });
    expect(creds.headers).toEqual({ authorization: 'Bearer file-token' });
    expect(creds.tls).toEqual({ ca: Buffer.from('CA'), rejectUnauthorized: false, servername: 'n' });
    expect(credentialsOf({ server: 'https://k', username: 'u', password: 'p' }).headers.authorization).toBe(
      `Basic ${Buffer.from('u:p').toString('base64')}`,
    );
  });

  test('accessFromSpec re-reads files after refreshMs, or at once when asked (a rotated token)', async () => {
    const tok = write('tok', 'one');
    let now = 0;
    const access = accessFromSpec({ server: 'https://k', token: { file: tok } }, { refreshMs: 1000, now: () => now });
    expect((await access.credentials()).headers.authorization).toBe('Bearer one');
    write('tok', 'two');
    now = 500;
    expect((await access.credentials()).headers.authorization).toBe('Bearer one');
    expect((await access.credentials(true)).headers.authorization).toBe('Bearer two');
    write('tok', 'three');
    now = 2000;
    expect((await access.credentials()).headers.authorization).toBe('Bearer three');
  });
});

describe('the kubeconfig setting: FNMESH_KUBECONFIG, then KUBECONFIG, then ~/.kube/config, then the ServiceAccount', () => {
  let dir: string;
  let home: string;
  let saDir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-order-'));
    home = path.join(dir, 'home');
    saDir = path.join(dir, 'sa');
    mkdirSync(path.join(home, '.kube'), { recursive: true });
    mkdirSync(saDir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A kubeconfig whose server names it, so the test sees which one was chosen. */
  const config = (file: string, server: string, user: Record<string, unknown> = { token: 't' }): string => {
    writeFileSync(file, JSON.stringify(kubeconfig(user, { server })));
    return file;
  };
  const serverOf = (r: ReturnType<typeof findAccessSpec>): string | undefined =>
    r.kind === 'spec' ? r.spec.server : undefined;

  test('each source is used only when every source before it is absent', () => {
    const setting = config(path.join(dir, 'setting'), 'https://setting:1');
    const kubeconfigEnv = config(path.join(dir, 'env'), 'https://kubeconfig-env:1');
    config(path.join(home, '.kube', 'config'), 'https://home:1');
    writeFileSync(path.join(saDir, 'token'), 'sa');
    const env = {
      KUBECONFIG: kubeconfigEnv,
      HOME: home,
      KUBERNETES_SERVICE_HOST: '10.96.0.1',
      KUBERNETES_SERVICE_PORT: '443',
    };
    const find = (e: typeof env | Partial<typeof env>, kubeconfig?: string) =>
      serverOf(findAccessSpec(e, { serviceAccountDir: saDir, ...(kubeconfig ? { kubeconfig } : {}) }));
    expect(find(env, setting)).toBe('https://setting:1');
    expect(find(env)).toBe('https://kubeconfig-env:1');
    expect(find({ ...env, KUBECONFIG: '' })).toBe('https://home:1');
    expect(find({ ...env, KUBECONFIG: '', HOME: path.join(dir, 'nohome') })).toBe('https://10.96.0.1:443');
  });

  test('KUBECONFIG skips its files that do not exist, as kubectl', () => {
    const file = config(path.join(dir, 'env'), 'https://kubeconfig-env:1');
    const missing = path.join(dir, 'missing');
    expect(serverOf(findAccessSpec({ KUBECONFIG: `${missing}${path.delimiter}${file}`, HOME: home }))).toBe(
      'https://kubeconfig-env:1',
    );
  });

  test('a named file that does not exist, or nothing at all, is a ConfigError with the fix', () => {
    const missing = path.join(dir, 'missing');
    expect(() => loadKubeAccess({ kubeconfig: missing, env: { HOME: home } })).toThrow(
      new ConfigError(
        `FNMESH_KUBECONFIG="${missing}" does not exist: give the path of a kubeconfig file, or unset it to use KUBECONFIG or the in-cluster ServiceAccount`,
      ),
    );
    expect(() => loadKubeAccess({ env: { KUBECONFIG: missing, HOME: home } })).toThrow(
      /^KUBECONFIG=".*missing" names no file that exists/,
    );
    writeFileSync(path.join(dir, 'bad'), 'a: [');
    expect(() => loadKubeAccess({ kubeconfig: path.join(dir, 'bad'), env: {} })).toThrow(
      /^cannot read the kubeconfig .*bad: /,
    );
    expect(() => loadKubeAccess({ env: { HOME: path.join(dir, 'nohome') }, serviceAccountDir: saDir })).toThrow(
      'no Kubernetes configuration was found: set FNMESH_KUBECONFIG or KUBECONFIG to a kubeconfig file (flag --kubeconfig), or run it in a pod with a ServiceAccount',
    );
  });

  test('client-node is loaded only for what the small loader does not read (an exec plugin)', () => {
    let loads = 0;
    jest.doMock('@kubernetes/client-node', () => {
      loads++;
      return jest.requireActual('@kubernetes/client-node');
    });
    try {
      const token = config(path.join(dir, 'token'), 'https://token:1');
      const exec = config(path.join(dir, 'exec'), 'https://exec:1', {
        exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'true' },
      });
      jest.isolateModules(() => {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { loadKubeAccess: load } = require('./kubeconfig') as typeof import('./kubeconfig');
        expect(load({ kubeconfig: token, env: {} }).server).toBe('https://token:1');
        expect(loads).toBe(0);
        expect(load({ kubeconfig: exec, env: {} }).server).toBe('https://exec:1');
        expect(loads).toBe(1);
      });
    } finally {
      jest.dontMock('@kubernetes/client-node');
    }
  });
});
