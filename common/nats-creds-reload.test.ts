import { createMeshTrust, mintUser, parseCreds, replicaIdentity, type MintedUser } from './nats-identity';
import { Debounce, credsDecision, stampChanged, type CredsDecisionInput } from './nats-creds-reload';

const FILE = '/etc/fnmesh/nats/user.creds';
const trust = createMeshTrust();
const identity = replicaIdentity('shop', 'cart');
let current: MintedUser;
let rotated: MintedUser;

beforeAll(async () => {
  current = await mintUser(trust, identity, { ttlMs: 3_600_000 });
  rotated = await mintUser(trust, identity, { ttlMs: 3_600_000 });
});

function input(over: Partial<CredsDecisionInput>): CredsDecisionInput {
  return {
    file: FILE,
    read: { text: rotated.creds },
    lastText: current.creds,
    inUse: parseCreds(current.creds, 'test', 'fix'),
    now: new Date(),
    ...over,
  };
}

describe('credsDecision', () => {
  test('new valid credentials: hand over to them', () => {
    const d = credsDecision(input({}));
    expect(d.action).toBe('handover');
    if (d.action === 'handover') expect(d.creds.publicKey).toBe(rotated.publicKey);
  });

  test('the same text as last time: nothing to do', () => {
    expect(credsDecision(input({ read: { text: current.creds } }))).toEqual({ action: 'none' });
  });

  test('a file that holds the credentials already in use (a reconnect read it first): no handover', () => {
    expect(credsDecision(input({ lastText: undefined, read: { text: current.creds } }))).toEqual({
      action: 'in-use',
    });
  });

  test("the first look with the connection's credentials unknown: the file is the starting point", () => {
    expect(credsDecision(input({ lastText: undefined, inUse: undefined }))).toEqual({ action: 'in-use' });
    expect(credsDecision(input({ inUse: undefined })).action).toBe('handover');
  });

  test('the first look finds the file changed since the connection logged in: hand over at once', () => {
    expect(credsDecision(input({ lastText: undefined })).action).toBe('handover');
  });

  test('a malformed file: keep the connection; the problem names the file, the setting, the fix and the user kept', () => {
    const d = credsDecision(input({ read: { text: rotated.creds.replace(rotated.jwt, 'not-a-jwt') } }));
    expect(d.action).toBe('keep');
    if (d.action !== 'keep') return;
    expect(d.problem).toContain(
      `the rotated NATS credentials file ${FILE} (FNMESH_NATS_CREDS) holds a malformed user JWT`,
    );
    expect(d.problem).toContain('write a valid .creds file');
    expect(d.problem).toContain(`keeping the current connection (user ${current.publicKey}, valid until`);
  });

  test('a file without a seed, or with the seed of another user: keep', () => {
    const noSeed = rotated.creds.slice(0, rotated.creds.indexOf('-----BEGIN USER NKEY SEED'));
    expect(credsDecision(input({ read: { text: noSeed } }))).toMatchObject({
      action: 'keep',
      problem: expect.stringContaining('has no user seed') as string,
    });
    const otherSeed = rotated.creds.replace(rotated.seed, current.seed);
    expect(credsDecision(input({ read: { text: otherSeed } }))).toMatchObject({
      action: 'keep',
      problem: expect.stringContaining("does not belong to its JWT's user") as string,
    });
  });

  test('an expired user: keep (the server would refuse it), saying when it expired', async () => {
    const old = await mintUser(trust, identity, { ttlMs: 1_000, now: new Date(Date.now() - 60_000) });
    const d = credsDecision(input({ read: { text: old.creds } }));
    expect(d).toMatchObject({
      action: 'keep',
      problem: expect.stringContaining('holds a user JWT that expired at') as string,
    });
  });

  test('an unreadable file: keep, naming why', () => {
    const d = credsDecision(input({ read: { error: 'does not exist (any more)' } }));
    expect(d).toMatchObject({
      action: 'keep',
      problem: expect.stringContaining(`${FILE} (FNMESH_NATS_CREDS) does not exist (any more)`) as string,
    });
  });
});

describe('stampChanged', () => {
  const stamp = { dev: 1, ino: 10, size: 900, mtimeMs: 1000 };
  test('the kubelet swap gives the path another inode; an edit in place another size or mtime', () => {
    expect(stampChanged(stamp, { ...stamp })).toBe(false);
    expect(stampChanged(stamp, { ...stamp, ino: 11 })).toBe(true);
    expect(stampChanged(stamp, { ...stamp, size: 901 })).toBe(true);
    expect(stampChanged(stamp, { ...stamp, mtimeMs: 1001 })).toBe(true);
  });
  test('a file that appears or disappears changed; one that stays away did not', () => {
    expect(stampChanged(undefined, stamp)).toBe(true);
    expect(stampChanged(stamp, undefined)).toBe(true);
    expect(stampChanged(undefined, undefined)).toBe(false);
  });
});

describe('Debounce', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('a burst of events fires once, after the quiet period', () => {
    const fire = jest.fn();
    const d = new Debounce(100, fire);
    d.poke();
    jest.advanceTimersByTime(60);
    d.poke();
    jest.advanceTimersByTime(60);
    expect(fire).not.toHaveBeenCalled();
    jest.advanceTimersByTime(40);
    expect(fire).toHaveBeenCalledTimes(1);
    d.poke();
    d.cancel();
    jest.advanceTimersByTime(200);
    expect(fire).toHaveBeenCalledTimes(1);
  });
});
