import {
  createMeshTrust,
  mintUser,
  parseCreds,
  replicaIdentity,
  rotationPolicyFor,
  type MeshTrust,
} from '../common/nats-identity';
import { desiredCredsSecret, mintDecision, responseTtlMsFor, type MintWanted } from './nats-creds';

const identity = replicaIdentity('shop', 'orders');
const HOUR = 3_600_000;

function wanted(trust: MeshTrust, responseTtlMs = 600_000): MintWanted {
  return {
    identity,
    signer: trust.signingKey.getPublicKey(),
    account: trust.account.getPublicKey(),
    responseTtlMs,
  };
}

async function minted(trust: MeshTrust, now: Date, responseTtlMs = 600_000): Promise<ReturnType<typeof parseCreds>> {
  const m = await mintUser(trust, identity, { ttlMs: HOUR, responseTtlMs, now });
  return parseCreds(m.creds, 'test', 'fix');
}

describe('mintDecision', () => {
  const trust = createMeshTrust();
  const policy = rotationPolicyFor(HOUR);

  test('no credentials: mint', () => {
    expect(mintDecision(undefined, wanted(trust), new Date(), policy)).toMatchObject({ mint: true });
  });

  test('fresh credentials: keep, and look again at two thirds of the lifetime', async () => {
    const creds = await minted(trust, new Date());
    const d = mintDecision(creds, wanted(trust), new Date(), policy);
    if (d.mint) throw new Error(`expected no mint, got ${d.reason}`);
    const lifetime = creds.expiresAt!.getTime() - creds.issuedAt.getTime();
    expect(d.checkAt.getTime()).toBe(Math.trunc(creds.issuedAt.getTime() + lifetime * (2 / 3)));
  });

  test('past the renewal time: mint', async () => {
    const creds = await minted(trust, new Date());
    const later = new Date(creds.issuedAt.getTime() + 0.7 * HOUR);
    expect(mintDecision(creds, wanted(trust), later, policy)).toMatchObject({ mint: true });
  });

  test('signed by another trust chain: mint', async () => {
    const creds = await minted(createMeshTrust(), new Date());
    expect(mintDecision(creds, wanted(trust), new Date(), policy)).toMatchObject({
      mint: true,
      reason: expect.stringContaining('signing key'),
    });
  });

  test('a longer reply window wanted (a function timeout grew): mint', async () => {
    const creds = await minted(trust, new Date(), 600_000);
    expect(mintDecision(creds, wanted(trust, 1_200_000), new Date(), policy)).toMatchObject({
      mint: true,
      reason: expect.stringContaining('permissions'),
    });
  });
});

describe('rotationPolicyFor', () => {
  test('a short lifetime is renewed at two thirds, not at once', () => {
    expect(rotationPolicyFor(6000).minRemainingMs).toBe(2000);
    expect(rotationPolicyFor(HOUR).minRemainingMs).toBe(10 * 60_000);
  });
});

describe('responseTtlMsFor', () => {
  test('the largest of the service and function timeouts, at least the default', () => {
    const fs = (timeoutMs: number, fns: Array<number | undefined>) => ({
      spec: { timeoutMs, functions: fns.map((t, i) => ({ name: `f${i}`, ...(t ? { timeoutMs: t } : {}) })) },
    });
    expect(responseTtlMsFor(fs(10_000, [undefined]) as never)).toBe(600_000);
    expect(responseTtlMsFor(fs(10_000, [1_800_000, 5]) as never)).toBe(1_800_000);
    expect(responseTtlMsFor(fs(3_600_000, []) as never)).toBe(3_600_000);
  });
});

describe('desiredCredsSecret', () => {
  test('holds the .creds under nats.creds, owned by its FunctionService', () => {
    const owner = {
      apiVersion: 'fnmesh.io/v1alpha1',
      kind: 'FunctionService',
      name: 'orders',
      uid: 'u1',
      controller: true,
    };
    const s = desiredCredsSecret({
      namespace: 'shop',
      name: 'fnmesh-service-shop-orders-nats',
      identity,
      creds: 'CREDS',
      owner,
    });
    expect(s.metadata).toMatchObject({
      namespace: 'shop',
      name: 'fnmesh-service-shop-orders-nats',
      ownerReferences: [owner],
    });
    expect(Buffer.from(s.data!['nats.creds']!, 'base64').toString()).toBe('CREDS');
    expect(s.metadata!.labels).toEqual({ 'app.kubernetes.io/managed-by': 'fnmesh-operator' });
  });
});
