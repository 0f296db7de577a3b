import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_RESPONSE_TTL_MS, createMeshTrust, parseCreds } from '../common/nats-identity';
import { loadOrCreateTrustDir } from '../common/nats-identity/trust-dir';
import { createLocalNatsUsers, responseTtlMs } from './nats-users';

describe('local NATS users', () => {
  let parent: string;
  beforeEach(() => {
    parent = mkdtempSync(path.join(os.tmpdir(), 'fnmesh-users-test-'));
  });
  afterEach(() => rmSync(parent, { recursive: true, force: true }));

  it('answers within the default window, or the longest call plus slack', () => {
    expect(responseTtlMs(5_000)).toBe(DEFAULT_RESPONSE_TTL_MS);
    expect(responseTtlMs(DEFAULT_RESPONSE_TTL_MS)).toBe(DEFAULT_RESPONSE_TTL_MS + 5_000);
  });

  it("writes the broker's JWTs and every user's creds privately, one user per service, and removes them", async () => {
    const users = await createLocalNatsUsers({ trust: createMeshTrust(), gatewayMaxCallMs: 60_000, parent });
    expect(statSync(users.dir).mode & 0o777).toBe(0o700);
    const first = await users.serviceCreds('default', 'greeter', 5_000);
    expect(await users.serviceCreds('default', 'greeter', 5_000)).toBe(first);
    for (const f of [users.operatorFile, users.accountFile, users.gatewayCreds, users.observerCreds, first])
      expect(statSync(f).mode & 0o777).toBe(0o600);
    const fix = 'n/a';
    const greeter = parseCreds(readFileSync(first, 'utf8'), first, fix);
    expect(greeter.claims.name).toBe('fnmesh-service-default-greeter');
    expect(greeter.claims.nats.sub?.allow).toContain('fnmesh.call.default.greeter.* fnmesh.default.greeter');
    expect(greeter.claims.nats.resp?.ttl).toBe(DEFAULT_RESPONSE_TTL_MS * 1_000_000);
    // a longer timeout: the user is minted again with a longer reply window, in the same file
    const longer = await users.serviceCreds('default', 'greeter', 20 * 60_000);
    expect(longer).toBe(first);
    const reminted = parseCreds(readFileSync(longer, 'utf8'), longer, fix);
    expect(reminted.claims.nats.resp?.ttl).toBe((20 * 60_000 + 5_000) * 1_000_000);
    users.remove();
    expect(existsSync(users.dir)).toBe(false);
  });

  it('creates a trust directory once and reads the same chain back', async () => {
    const dir = path.join(parent, 'trust');
    const created = await loadOrCreateTrustDir(dir, 'X');
    expect(created.created).toBe(true);
    expect(readFileSync(created.serverConfigFile, 'utf8')).toContain('resolver: MEMORY');
    const again = await loadOrCreateTrustDir(dir, 'X');
    expect(again.created).toBe(false);
    expect(again.trust.operator.getPublicKey()).toBe(created.trust.operator.getPublicKey());
    expect(again.trust.signingKey.getPublicKey()).toBe(created.trust.signingKey.getPublicKey());
  });

  it("adds a system account to an older fnmesh's trust directory once and writes its server config again", async () => {
    const dir = path.join(parent, 'older-trust');
    const created = await loadOrCreateTrustDir(dir, 'X');
    expect(created.upgraded).toBe(false);
    const conf = readFileSync(created.serverConfigFile, 'utf8');
    expect(conf).toContain(`system_account: "${created.trust.systemAccount.getPublicKey()}"`);
    // what an older fnmesh left: three seeds and a config without a system account
    rmSync(path.join(dir, 'system-account.nk'));
    writeFileSync(created.serverConfigFile, 'old\n');
    const upgraded = await loadOrCreateTrustDir(dir, 'X');
    expect(upgraded).toMatchObject({ created: false, upgraded: true });
    expect(upgraded.trust.operator.getPublicKey()).toBe(created.trust.operator.getPublicKey());
    const sys = upgraded.trust.systemAccount.getPublicKey();
    expect(readFileSync(upgraded.serverConfigFile, 'utf8')).toContain(`system_account: "${sys}"`);
    const again = await loadOrCreateTrustDir(dir, 'X');
    expect(again.upgraded).toBe(false);
    expect(again.trust.systemAccount.getPublicKey()).toBe(sys);
  });
});
