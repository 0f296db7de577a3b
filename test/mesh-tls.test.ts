/**
 * The whole call path over TLS with JWT auth: HTTP → the real gateway → a broker that requires TLS and
 * client certificates, in operator mode → real sidecars → SDK functions, with a function-to-function call
 * through the gateway. On nats-server, on the embedded broker run on its own (`fnmesh broker`), and on the
 * gateway's own embedded broker (FNMESH_BROKER_TLS_*); then through `fnmesh local` configured with the same
 * variables. A plain-text client, one without a client certificate and one that does not trust the CA are
 * refused by the broker before any credentials are read.
 *
 * The `fnmesh local` scenario needs `npm run build` first (`npm test` does it).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator } from '@nats-io/nats-core';
import { parse, stringify } from 'yaml';
import { silentLogger } from '../common';
import { NATS_CLIENT_ENV } from '../common/nats-client-settings';
import { GATEWAY_IDENTITY, replicaIdentity } from '../common/nats-identity';
import { ManifestFileSource } from '../common/manifest-source';
import { loadGatewayConfig, startGateway, type Gateway } from '../gateway';
import { GATEWAY_SETTINGS } from '../gateway/settings';
import { BROKER_TARGETS, type BrokerTarget } from './helpers/brokers';
import { ROOT, startCli, type CliProcess } from './helpers/cli-process';
import { callGateway, startReplica, type Replica } from './helpers/mesh';
import { createMeshAuth, type MeshAuth } from './helpers/mesh-auth';
import { freePort } from './helpers/ports';
import { rawConnect } from './helpers/raw-nats';
import { makeTestPki, type TestPki } from './helpers/tls-certs';
import { waitFor } from './helpers/wait';

jest.setTimeout(120_000);

const NS = 'tls';
const MANIFESTS = `---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: front, namespace: ${NS} }
spec:
  functions:
    - { name: hello, rule: { rule: allow } }
    - { name: viaBack, rule: { rule: allow } }
---
apiVersion: fnmesh.io/v1alpha1
kind: FunctionService
metadata: { name: back, namespace: ${NS} }
spec:
  functions:
    - { name: secret, rule: { rule: match, type: string, eval: "==", f1: args.caller, f2: ${NS}/front } }
`;

/** The client side of the PKI every part of the mesh uses (FNMESH_NATS_TLS_*). */
const clientTlsEnv = (pki: TestPki): Record<string, string> => ({
  [NATS_CLIENT_ENV.tlsCa]: pki.caFile,
  [NATS_CLIENT_ENV.tlsCert]: pki.clientCert,
  [NATS_CLIENT_ENV.tlsKey]: pki.clientKey,
});

/** What a broker requiring TLS with client certificates refuses, whatever the credentials. */
async function expectRefusesWithoutTls(natsUrl: string, pki: TestPki, creds: string): Promise<void> {
  const port = Number(new URL(natsUrl).port);
  // plain text: INFO says TLS is required; a CONNECT in the clear is never answered with PONG
  const plain = await rawConnect(port);
  expect(plain.info().tls_required).toBe(true);
  plain.send('CONNECT {"verbose":false}', 'PING');
  await plain.waitClosed();
  expect(plain.text()).not.toContain('PONG');
  const authenticator = credsAuthenticator(new Uint8Array(readFileSync(creds)));
  // valid credentials and a trusted CA, but no client certificate
  await expect(
    connect({ servers: natsUrl, reconnect: false, timeout: 5_000, authenticator, tls: { caFile: pki.caFile } }),
  ).rejects.toThrow();
  // valid credentials and a client certificate, but the broker's CA is not trusted
  await expect(
    connect({
      servers: natsUrl,
      reconnect: false,
      timeout: 5_000,
      authenticator,
      tls: { caFile: pki.otherCaFile, certFile: pki.clientCert, keyFile: pki.clientKey },
    }),
  ).rejects.toThrow(/self.signed|certificate/i);
}

interface MeshBroker {
  name: string;
  /** Starts the broker (or not, for the gateway's own) and returns the gateway's NATS settings. */
  start(
    auth: MeshAuth,
    pki: TestPki,
    dir: string,
  ): Promise<{ gatewayEnv: Record<string, string>; stop(): Promise<void> }>;
  toString(): string;
}

const externalBroker = (target: BrokerTarget): MeshBroker => ({
  name: target.name,
  toString: () => target.name,
  async start(auth, pki) {
    const broker = await target.start({
      operator: auth.operator,
      tls: { certFile: pki.serverCert, keyFile: pki.serverKey, caFile: pki.caFile },
    });
    return { gatewayEnv: { FNMESH_NATS_URL: broker.url }, stop: () => broker.stop() };
  },
});

const gatewayEmbedded: MeshBroker = {
  name: "the gateway's embedded broker",
  toString: () => "the gateway's embedded broker",
  async start(auth, pki, dir) {
    const operatorFile = path.join(dir, 'operator.jwt');
    writeFileSync(operatorFile, auth.operator.operatorJwt);
    const accountFiles = auth.operator.accountJwts.map((jwt, i) => {
      const f = path.join(dir, `account-${i}.jwt`);
      writeFileSync(f, jwt);
      return f;
    });
    return {
      gatewayEnv: {
        [GATEWAY_SETTINGS.brokerHost.env]: '127.0.0.1',
        [GATEWAY_SETTINGS.brokerPort.env]: String(await freePort()),
        [GATEWAY_SETTINGS.brokerOperator.env]: operatorFile,
        [GATEWAY_SETTINGS.brokerAccounts.env]: accountFiles.join(','),
        [GATEWAY_SETTINGS.brokerTlsCert.env]: pki.serverCert,
        [GATEWAY_SETTINGS.brokerTlsKey.env]: pki.serverKey,
        [GATEWAY_SETTINGS.brokerTlsCa.env]: pki.caFile,
      },
      stop: () => Promise.resolve(),
    };
  },
};

describe.each([...BROKER_TARGETS.map(externalBroker), gatewayEmbedded])(
  'the mesh over TLS with JWT auth on %s',
  (mb) => {
    let pki: TestPki;
    let auth: MeshAuth;
    let dir: string;
    let gw: Gateway;
    let stopBroker: () => Promise<void> = () => Promise.resolve();
    const replicas: Replica[] = [];

    beforeAll(async () => {
      pki = makeTestPki();
      auth = await createMeshAuth();
      dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-mesh-tls-'));
      writeFileSync(path.join(dir, 'services.yaml'), MANIFESTS);
      const broker = await mb.start(auth, pki, dir);
      stopBroker = broker.stop;
      const config = loadGatewayConfig({
        ...broker.gatewayEnv,
        ...clientTlsEnv(pki),
        [NATS_CLIENT_ENV.creds]: auth.gatewayCreds,
        FNMESH_LISTEN: '127.0.0.1:0',
        FNMESH_OPS_LISTEN: '127.0.0.1:0',
        FNMESH_MANIFESTS: path.join(dir, 'services.yaml'),
        FNMESH_LOG_LEVEL: 'silent',
        FNMESH_SHUTDOWN_TIMEOUT_MS: '2000',
      });
      gw = await startGateway(config, {
        logger: silentLogger,
        ruleSource: new ManifestFileSource(config.manifests, { debounceMs: 20, logger: silentLogger }),
      });
      await waitFor(() => gw.readiness().ready, { what: 'gateway ready' });
      for (const [service, functions] of [
        [
          'front',
          {
            hello: (p: { name: string }) => ({ greeting: `Hello, ${p.name}!` }),
            viaBack: (_p: unknown, ctx: { call(s: string, f: string): Promise<unknown> }) => ctx.call('back', 'secret'),
          },
        ],
        ['back', { secret: (_p: unknown, ctx: { caller?: string }) => ({ secret: 42, caller: ctx.caller }) }],
      ] as const) {
        replicas.push(
          await startReplica({
            natsUrl: gw.natsUrl,
            namespace: NS,
            service,
            functions,
            env: { ...clientTlsEnv(pki), [NATS_CLIENT_ENV.creds]: await auth.credsFor(NS, service) },
          }),
        );
      }
    });

    afterAll(async () => {
      for (const r of replicas.splice(0)) await r.stop().catch(() => undefined);
      await gw?.stop();
      await stopBroker();
      if (dir) rmSync(dir, { recursive: true, force: true });
      auth?.cleanup();
      pki?.remove();
    });

    test('a call and a function-to-function call go through gateway, broker and sidecars over TLS', async () => {
      const route = (r: string): string => `${NS}/functions/${r}`;
      // a replica's subscription reaches the broker a moment after its sidecar is ready: retry the first call
      const hello = await waitFor(
        async () => {
          const a = await callGateway(gw.url, route('front/hello'), { params: { name: 'Ada' } });
          return a.status === 503 ? undefined : a;
        },
        { what: 'front routable' },
      );
      expect(hello.status).toBe(200);
      expect(hello.body).toEqual({ result: { greeting: 'Hello, Ada!' } });
      const nested = await waitFor(
        async () => {
          const a = await callGateway(gw.url, route('front/viaBack'));
          return a.status === 503 ? undefined : a;
        },
        { what: 'back routable' },
      );
      expect(nested.status).toBe(200);
      expect(nested.body.result).toEqual({ secret: 42, caller: `${NS}/front` });
      // the rule still holds over TLS: back.secret only for front
      expect((await callGateway(gw.url, route('back/secret'))).status).toBe(403);
    });

    test('the broker refuses plain text, a client without a certificate and one that does not trust its CA', async () => {
      await expectRefusesWithoutTls(gw.natsUrl, pki, auth.gatewayCreds);
    });

    test('over TLS, JWT auth still applies: no credentials are refused, a sidecar user keeps its permissions', async () => {
      const tls = { caFile: pki.caFile, certFile: pki.clientCert, keyFile: pki.clientKey };
      await expect(connect({ servers: gw.natsUrl, reconnect: false, timeout: 5_000, tls })).rejects.toThrow(
        /Authorization Violation/,
      );
      const front = replicaIdentity(NS, 'front');
      const nc = await connect({ servers: gw.natsUrl, reconnect: false, tls, ...(await auth.connectOptions(front)) });
      try {
        expect(nc.info?.tls_required).toBe(true);
        await expect(nc.request(`fnmesh.call.${NS}.back.secret`, undefined, { timeout: 5_000 })).rejects.toThrow(
          /Permissions Violation for Publish/,
        );
      } finally {
        await nc.close();
      }
      // the gateway's own user, for contrast, may publish calls
      const asGateway = await connect({
        servers: gw.natsUrl,
        reconnect: false,
        tls,
        ...(await auth.connectOptions(GATEWAY_IDENTITY)),
      });
      try {
        expect(asGateway.info?.tls_required).toBe(true);
        const reply = await asGateway.request(`fnmesh.call.${NS}.front.hello`, JSON.stringify({ name: 'Bo' }), {
          timeout: 5_000,
        });
        expect(JSON.parse(reply.string())).toEqual({ greeting: 'Hello, Bo!' });
      } finally {
        await asGateway.close();
      }
    });
  },
);

describe('fnmesh local with TLS on its embedded broker (FNMESH_BROKER_TLS_*, FNMESH_NATS_TLS_*)', () => {
  let pki: TestPki;
  let dir: string;
  let cli: CliProcess | undefined;
  let gatewayUrl: string;
  let natsUrl: string;
  let usersDir: string;

  async function waitLine(re: RegExp, what: string): Promise<RegExpExecArray> {
    return waitFor(
      () => {
        if (cli!.child.exitCode !== null)
          throw new Error(`fnmesh local exited (${cli!.child.exitCode}):\n${cli!.lines.slice(-30).join('\n')}`);
        for (const line of cli!.lines) {
          const m = re.exec(line);
          if (m) return m;
        }
        return undefined;
      },
      { timeoutMs: 60_000, intervalMs: 25, what },
    );
  }

  beforeAll(async () => {
    pki = makeTestPki();
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-local-tls-'));
    for (const name of ['greeter.yaml', 'text.yaml', 'authz.yaml']) {
      const doc = parse(readFileSync(path.join(ROOT, 'examples', name), 'utf8')) as {
        spec: { local: { cwd?: string } };
      };
      doc.spec.local.cwd = path.resolve(ROOT, 'examples', doc.spec.local.cwd ?? '.');
      writeFileSync(path.join(dir, name), stringify(doc));
    }
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FNMESH_LISTEN: `127.0.0.1:${port}`,
      FNMESH_OPS_LISTEN: '127.0.0.1:0',
      FNMESH_BROKER_PORT: String(await freePort()),
      [GATEWAY_SETTINGS.brokerTlsCert.env]: pki.serverCert,
      [GATEWAY_SETTINGS.brokerTlsKey.env]: pki.serverKey,
      [GATEWAY_SETTINGS.brokerTlsCa.env]: pki.caFile,
      ...clientTlsEnv(pki),
      NO_COLOR: '1',
    };
    delete env.FNMESH_NATS_URL;
    cli = startCli(['local', dir], env);
    await waitLine(/^curl /, 'the banner');
    natsUrl = (await waitLine(/^\s+broker\s+(nats:\/\/\S+)/, 'the broker line'))[1]!;
    usersDir = (await waitLine(/^\s+nats users (\S+)/, 'the NATS users line'))[1]!;
    gatewayUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    if (cli && cli.child.exitCode === null) {
      cli.child.kill('SIGINT');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([cli.exit, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
      clearTimeout(timer);
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    pki?.remove();
  });

  test('every replica is ready and calls work, nested ones too (greeter.shout → text.upper)', async () => {
    const call = (route: string, params: unknown): ReturnType<typeof callGateway> =>
      callGateway(gatewayUrl, `default/functions/${route}`, { params });
    expect((await call('greeter/hello', { name: 'Ada' })).body).toEqual({ result: { greeting: 'Hello, Ada!' } });
    const shout = await call('greeter/shout', { name: 'Ada' });
    expect(shout.status).toBe(200);
    expect(shout.body.result).toEqual({ greeting: 'HELLO, ADA!', via: 'default/text.upper' });
  });

  test('its broker refuses plain text, a client without a certificate and one that does not trust the CA', async () => {
    await expectRefusesWithoutTls(natsUrl, pki, path.join(usersDir, 'service.default.greeter.creds'));
  });
});
