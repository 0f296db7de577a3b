/**
 * Frontends in a real browser: headless Chromium (Debian's `chromium`, driven over the DevTools protocol by
 * puppeteer-core) loads the example page (examples/web) from one loopback origin and calls the gateway on
 * another, with plain fetch (credentials: "include") and with Space Cloud's client (space-api), signed in
 * and not. What is checked is what the page sees: results, error bodies, and calls the browser blocks.
 *
 * 1. `fnmesh local` as a process with its default origins (http://localhost:*, http://127.0.0.1:*) and the
 *    example greeter service.
 * 2. A gateway with an explicit FNMESH_CORS_ORIGINS list (credentials on by default), and one with
 *    FNMESH_CORS_CREDENTIALS=false, both in this process with an SDK function behind a real sidecar.
 *
 * Needs `npm run build` (the CLI and the example greeter run built) and chromium (scripts/test.sh installs
 * it when missing; FNMESH_CHROMIUM names another binary).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT } from 'jose';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { parse, stringify } from 'yaml';
import { silentLogger } from '../common';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { FunctionError } from '../sdk';
import { startWebExample, type WebExample } from '../examples/web/serve';
import { ROOT, startCli, type CliProcess } from './helpers/cli-process';
import { startReplica, type Replica } from './helpers/mesh';
import { freePort } from './helpers/ports';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const SECRET = 'browser-test-secret-0123456789abcdef';

function chromiumPath(): string {
  const named = process.env.FNMESH_CHROMIUM;
  if (named) return named;
  try {
    return execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      "chromium is not installed: apt-get install -y chromium (Debian's package; scripts/test.sh installs it), or set FNMESH_CHROMIUM to a Chromium binary",
    );
  }
}

async function token(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(SECRET));
}

interface Call {
  gateway: string;
  namespace: string;
  service: string;
  fn: string;
  params: unknown;
  token?: string;
}
type Seen =
  { status: number; body: { result?: unknown; error?: string }; requestId?: string | null } | { blocked: string };
type Client = 'callWithFetch' | 'callWithSpaceApi';

/** Runs one of the page's own call functions (examples/web/app.js) inside the page. */
async function inPage(page: Page, client: Client, call: Call): Promise<Seen> {
  return page.evaluate(
    (c: Client, args: Call) =>
      (globalThis as unknown as { fnmeshWeb: Record<Client, (a: Call) => Promise<Seen>> }).fnmeshWeb[c](args),
    client,
    call,
  );
}

let browser: Browser;

beforeAll(async () => {
  browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-gpu', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
});

/** A page of the example, loaded from `origin`, whose form points at `gateway`. */
async function openPage(origin: string, gateway: string): Promise<Page> {
  const page = await browser.newPage();
  const res = await page.goto(`${origin}/?gateway=${encodeURIComponent(gateway)}`);
  expect(res?.status()).toBe(200);
  await page.waitForFunction(() => 'fnmeshWeb' in globalThis && 'Space' in globalThis);
  return page;
}

describe('fnmesh local: a page on a localhost origin calls the mesh (the default origins)', () => {
  let dir: string;
  let cli: CliProcess;
  let web: WebExample;
  let gateway: string;
  let local: Page;
  let elsewhere: Page;

  beforeAll(async () => {
    for (const built of ['dist/cli/main.js', 'dist/examples/greeter/index.js']) {
      if (!existsSync(path.join(ROOT, built))) throw new Error(`${built} is missing: run \`npm run build\` first`);
    }
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-browser-'));
    const doc = parse(readFileSync(path.join(ROOT, 'examples', 'greeter.yaml'), 'utf8')) as {
      spec: { replicas: number; local: { cwd: string } };
    };
    doc.spec.replicas = 1;
    doc.spec.local.cwd = path.resolve(ROOT, 'examples', doc.spec.local.cwd);
    writeFileSync(path.join(dir, 'greeter.yaml'), stringify(doc));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FNMESH_LISTEN: `127.0.0.1:${port}`,
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(await freePort()),
      FNMESH_JWT_SECRET: SECRET,
      NO_COLOR: '1',
    };
    delete env.FNMESH_NATS_URL;
    delete env.FNMESH_CORS_ORIGINS;
    delete env.FNMESH_CORS_CREDENTIALS;
    cli = startCli(['local', dir], env);
    gateway = `http://127.0.0.1:${port}`;
    // The page is served on 127.0.0.1 and 127.0.0.2: http://localhost:P is an allowed origin, http://127.0.0.2:P not.
    web = await startWebExample({ hosts: ['127.0.0.1', '127.0.0.2'] });
    await waitFor(
      () => {
        if (cli.child.exitCode !== null) throw new Error(`fnmesh local exited:\n${cli.lines.join('\n')}`);
        return cli.lines.some((l) => l.includes('fnmesh local is ready'));
      },
      { timeoutMs: 60_000, what: 'fnmesh local to be ready' },
    );
    local = await openPage(`http://localhost:${web.port}`, gateway);
    elsewhere = await openPage(`http://127.0.0.2:${web.port}`, gateway);
  });

  afterAll(async () => {
    await web?.close();
    if (cli && cli.child.exitCode === null) {
      cli.child.kill('SIGTERM');
      await cli.exit;
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const call = (fn: string, params: unknown, tok?: string): Call => ({
    gateway,
    namespace: 'default',
    service: 'greeter',
    fn,
    params,
    ...(tok ? { token: tok } : {}),
  });

  it('says in its summary which origins may call', () => {
    expect(cli.lines).toContainEqual(expect.stringContaining('browsers  http://localhost:*, http://127.0.0.1:*'));
  });

  it.each<[string, Client]>([
    ['fetch', 'callWithFetch'],
    ['space-api', 'callWithSpaceApi'],
  ])('with %s: results, and error bodies the page can read', async (_name, client) => {
    const hello = await inPage(local, client, call('hello', { name: 'Ada' }));
    expect(hello).toMatchObject({ status: 200, body: { result: { greeting: 'Hello, Ada!' } } });

    const anonymous = await inPage(local, client, call('whoami', {}));
    expect(anonymous).toMatchObject({
      status: 401,
      body: { error: 'the rule of default/greeter.whoami needs a signed-in caller: send Authorization: Bearer <JWT>' },
    });

    const ada = await token({ sub: 'ada' });
    const signedIn = await inPage(local, client, call('whoami', {}, ada));
    expect(signedIn).toMatchObject({ status: 200, body: { result: { claims: { sub: 'ada' } } } });

    const notAdmin = await inPage(local, client, call('admin', {}, ada));
    expect(notAdmin).toMatchObject({ status: 403, body: { error: expect.stringContaining('default/greeter.admin') } });

    // greeter's `default` function denies every name it does not declare
    expect(await inPage(local, client, call('no_such_fn', {}, ada))).toMatchObject({ status: 403 });
  });

  it('lets the page read the request id it exposes', async () => {
    const seen = await inPage(local, 'callWithFetch', call('hello', { name: 'Ada' }));
    expect(seen).toMatchObject({ status: 200, requestId: expect.stringMatching(/.+/) });
  });

  it.each<[string, Client]>([
    ['fetch', 'callWithFetch'],
    ['space-api', 'callWithSpaceApi'],
  ])('blocks a page on another origin (%s)', async (_name, client) => {
    expect(await inPage(elsewhere, client, call('hello', { name: 'Ada' }))).toEqual({
      blocked: expect.stringMatching(/fetch/i),
    });
  });
});

describe('a gateway with an explicit origin list', () => {
  let dir: string;
  let web: WebExample;
  let withCredentials: Gateway;
  let withoutCredentials: Gateway;
  let replica: Replica;
  let page: Page;
  let unlisted: Page;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-browser-gw-'));
    writeFileSync(
      path.join(dir, 'web.yaml'),
      [
        'apiVersion: fnmesh.io/v1alpha1',
        'kind: FunctionService',
        'metadata: {name: web, namespace: default}',
        'spec:',
        '  functions:',
        '    - {name: hello, rule: {rule: allow}}',
        '    - {name: whoami, rule: {rule: authenticated}}',
        '    - {name: picky, rule: {rule: allow}}',
        '',
      ].join('\n'),
    );
    web = await startWebExample({ hosts: ['127.0.0.1'] });
    const env = {
      FNMESH_LISTEN: '127.0.0.1:0',
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_JWT_SECRET: SECRET,
      FNMESH_CORS_ORIGINS: `https://app.example.com,http://localhost:${web.port}`,
    };
    withCredentials = await startGateway(loadGatewayConfig({ ...env, FNMESH_BROKER_PORT: String(await freePort()) }), {
      logger: silentLogger,
      ruleSource: new ManifestFileSource([dir]),
    });
    withoutCredentials = await startGateway(
      loadGatewayConfig({ ...env, FNMESH_NATS_URL: withCredentials.natsUrl, FNMESH_CORS_CREDENTIALS: 'false' }),
      { logger: silentLogger, ruleSource: new ManifestFileSource([dir]) },
    );
    replica = await startReplica({
      natsUrl: withCredentials.natsUrl,
      namespace: 'default',
      service: 'web',
      functions: {
        hello: (params: { name?: string } | null) => ({ greeting: `Hello, ${params?.name ?? 'you'}!` }),
        whoami: (_params: unknown, ctx) => ({ sub: ctx.claims?.sub }),
        picky: () => {
          throw new FunctionError(422, 'name is required');
        },
      },
    });
    page = await openPage(`http://localhost:${web.port}`, withCredentials.url);
    unlisted = await openPage(`http://127.0.0.1:${web.port}`, withCredentials.url);
  });

  afterAll(async () => {
    await replica?.stop();
    await withoutCredentials?.stop();
    await withCredentials?.stop();
    await web?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const call = (gw: Gateway, fn: string, tok?: string): Call => ({
    gateway: gw.url,
    namespace: 'default',
    service: 'web',
    fn,
    params: { name: 'Grace' },
    ...(tok ? { token: tok } : {}),
  });

  it.each<[string, Client]>([
    ['fetch', 'callWithFetch'],
    ['space-api', 'callWithSpaceApi'],
  ])('a listed origin calls with credentials (%s)', async (_name, client) => {
    const gw = withCredentials;
    expect(await inPage(page, client, call(gw, 'hello'))).toMatchObject({
      status: 200,
      body: { result: { greeting: 'Hello, Grace!' } },
    });
    expect(await inPage(page, client, call(gw, 'whoami'))).toMatchObject({
      status: 401,
      body: { error: expect.any(String) },
    });
    expect(await inPage(page, client, call(gw, 'whoami', await token({ sub: 'grace' })))).toMatchObject({
      status: 200,
      body: { result: { sub: 'grace' } },
    });
    expect(await inPage(page, client, call(gw, 'picky'))).toEqual(
      expect.objectContaining({ status: 422, body: { error: 'name is required' } }),
    );
    // a name the service does not declare: a 404 that names it, and none of the others
    const missing = await inPage(page, client, call(gw, 'no_such_fn'));
    expect(missing).toMatchObject({ status: 404, body: { error: expect.stringContaining('"no_such_fn"') } });
    expect(JSON.stringify(missing)).not.toMatch(/hello|whoami|picky/);
  });

  it('an origin not on the list is blocked, even on the same host', async () => {
    expect(await inPage(unlisted, 'callWithFetch', call(withCredentials, 'hello'))).toEqual({
      blocked: expect.stringMatching(/fetch/i),
    });
  });

  it('with FNMESH_CORS_CREDENTIALS=false the browser keeps a credentialed answer from the page', async () => {
    expect(await inPage(page, 'callWithFetch', call(withoutCredentials, 'hello'))).toEqual({
      blocked: expect.stringMatching(/fetch/i),
    });
    // The same call from Node (no browser, no CORS) is answered: the refusal is the browser's.
    const res = await fetch(`${withoutCredentials.url}/v1/api/default/functions/web/hello`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: `http://localhost:${web.port}` },
      body: '{"params":null}',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(`http://localhost:${web.port}`);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
