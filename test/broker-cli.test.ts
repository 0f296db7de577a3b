/**
 * `fnmesh broker` with its security settings: operator-mode JWT auth and TLS from files, and a bad file
 * stopping it at start with the setting and the fix. Runs the built CLI (`npm run build` first).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser } from '@nats-io/jwt';
import { connect } from '@nats-io/transport-node';
import { jwtAuthenticator } from '@nats-io/nats-core';
import { startCli, type CliProcess } from './helpers/cli-process';
import { freePort, waitForPort } from './helpers/ports';
import { makeTestPki, type TestPki } from './helpers/tls-certs';
import { rawConnect } from './helpers/raw-nats';

jest.setTimeout(30_000);

describe('fnmesh broker with JWT auth and TLS from files', () => {
  let dir: string;
  let pki: TestPki;
  let cli: CliProcess | undefined;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-broker-cli-'));
    pki = makeTestPki();
  });
  afterEach(async () => {
    if (cli && cli.child.exitCode === null) {
      cli.child.kill('SIGTERM');
      await cli.exit;
    }
    cli = undefined;
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    pki.remove();
  });

  it('serves TLS and accepts only users of the trusted account', async () => {
    const operator = createOperator();
    const account = createAccount();
    const opFile = path.join(dir, 'operator.jwt');
    const accFile = path.join(dir, 'account.jwt');
    writeFileSync(opFile, await encodeOperator('op', operator));
    writeFileSync(
      accFile,
      await encodeAccount(
        'mesh',
        account,
        { limits: { conn: -1, subs: -1, data: -1, payload: -1 } },
        { signer: operator },
      ),
    );
    const port = await freePort();
    const env = { ...process.env, FNMESH_BROKER_OPERATOR: opFile, FNMESH_BROKER_ACCOUNTS: accFile };
    cli = startCli(['broker', '--port', String(port), '--tls-cert', pki.serverCert, '--tls-key', pki.serverKey], env);
    await waitForPort(port, 10_000);
    const raw = await rawConnect(port);
    expect(raw.info()).toMatchObject({ auth_required: true, tls_required: true });
    expect(typeof raw.info().nonce).toBe('string');
    raw.close();
    const user = createUser();
    const jwt = await encodeUser('u', user, account);
    const nc = await connect({
      servers: `nats://127.0.0.1:${port}`,
      reconnect: false,
      tls: { caFile: pki.caFile },
      authenticator: jwtAuthenticator(jwt, user.getSeed()),
    });
    await nc.flush();
    await nc.close();
    await expect(
      connect({ servers: `nats://127.0.0.1:${port}`, reconnect: false, tls: { caFile: pki.caFile } }),
    ).rejects.toThrow(/Authorization Violation/i);
  });

  it('stops at start when an account file is missing, naming the setting and the file', async () => {
    const opFile = path.join(dir, 'op-only.jwt');
    writeFileSync(opFile, await encodeOperator('op', createOperator()));
    const port = await freePort();
    cli = startCli(['broker', '--port', String(port)], {
      ...process.env,
      FNMESH_BROKER_OPERATOR: opFile,
      FNMESH_BROKER_ACCOUNTS: path.join(dir, 'missing.jwt'),
    });
    const { code } = await cli.exit;
    expect(code).not.toBe(0);
    expect(cli.lines.join('\n')).toMatch(
      /FNMESH_BROKER_ACCOUNTS: cannot read .*missing\.jwt \(ENOENT\): check the path/,
    );
  });
});
