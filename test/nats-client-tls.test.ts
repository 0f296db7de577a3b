/**
 * connectNats over TLS (FNMESH_NATS_TLS_CA) with a user of its own, on a real nats-server serving TLS in
 * operator mode; and the start-up error for a TLS file that is not there.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectNats, silentLogger } from '../common';
import {
  GATEWAY_IDENTITY,
  createMeshTrust,
  inboxPrefix,
  mintUser,
  meshOperatorModeConfig,
} from '../common/nats-identity';
import { startNatsServer, type RunningNatsServer } from './helpers/nats-server';

jest.setTimeout(30_000);

describe('connectNats with TLS and credentials (nats-server)', () => {
  let dir: string;
  let server: RunningNatsServer;
  let credsFile: string;
  let caFile: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-tls-'));
    // a self-signed certificate for 127.0.0.1: the server's certificate and the client's CA at once
    caFile = path.join(dir, 'server.pem');
    const keyFile = path.join(dir, 'server-key.pem');
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1'].concat([
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        keyFile,
        '-out',
        caFile,
      ]),
      { stdio: 'ignore' },
    );
    const trust = createMeshTrust();
    const user = await mintUser(trust, GATEWAY_IDENTITY, { ttlMs: 3_600_000 });
    credsFile = path.join(dir, 'gateway.creds');
    writeFileSync(credsFile, user.creds);
    server = await startNatsServer({
      config:
        (await meshOperatorModeConfig(trust)) +
        `tls { cert_file: ${JSON.stringify(caFile)}, key_file: ${JSON.stringify(keyFile)} }\n`,
    });
  });

  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("connects over TLS as its own user (the server applies that user's permissions)", async () => {
    const nc = await connectNats({
      servers: [server.url],
      name: 'tls test',
      credsFile,
      tls: { caFile },
      inboxPrefix: inboxPrefix(GATEWAY_IDENTITY),
      logger: silentLogger,
    });
    try {
      nc.subscribe('fnmesh.gw.x.y.z.w.f', { queue: 'fnmesh.gateway', callback: (_e, m) => void m.respond('ok') });
      // the gateway may not publish fnmesh.gw: a request to it is refused by the server, proving the user
      await expect(nc.request('fnmesh.gw.x.y.z.w.f', undefined, { timeout: 5_000 })).rejects.toThrow(
        /Permissions Violation for Publish/,
      );
      expect(nc.info?.tls_required ?? nc.info?.tls_available).toBeTruthy();
    } finally {
      await nc.close();
    }
  });

  test('a TLS file that is not there stops it at start, naming the file and the setting', async () => {
    const missing = path.join(dir, 'nope.pem');
    await expect(
      connectNats({ servers: [server.url], name: 'tls test', tls: { caFile: missing }, logger: silentLogger }),
    ).rejects.toThrow(
      new RegExp(
        `^the TLS file ${missing} \\(FNMESH_NATS_TLS_CA\\) cannot be read .*: point FNMESH_NATS_TLS_CA at a readable PEM file$`,
      ),
    );
  });

  test('without the CA the server certificate is not trusted', async () => {
    // a fresh client with no CA: node refuses the self-signed certificate
    const { connect } = await import('@nats-io/transport-node');
    await expect(connect({ servers: server.url, tls: {}, reconnect: false })).rejects.toThrow(
      /self.signed|certificate/i,
    );
  });
});
