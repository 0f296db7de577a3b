import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { accessFromSpec, credentialsOf, findAccessSpec, inClusterSpec, specFromKubeconfig } from './kubeconfig';

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
      dir,
    );
    expect(inPod).toMatchObject({ kind: 'spec', spec: { server: 'https://10.96.0.1:443' } });
    expect(findAccessSpec({ HOME: path.join(dir, 'nohome') }, dir).kind).toBe('unsupported');
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
