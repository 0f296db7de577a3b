import { Prefix, createAccount, createUser, fromPublic, fromSeed } from '@nats-io/nkeys';
import { createNativeKeyPair, decodeNatsJwt, nativeKeyPair, verifyWithPublicNkey } from './native-keys';

describe('native key pairs', () => {
  it("give nkeys' own public key, seed and signature bytes for the same seed", () => {
    for (const kp of [createUser(), createAccount()]) {
      const native = nativeKeyPair(kp.getSeed());
      expect(native.getPublicKey()).toBe(kp.getPublicKey());
      expect(native.getSeed()).toEqual(kp.getSeed());
      expect(native.getPrivateKey()).toEqual(kp.getPrivateKey());
      const data = new TextEncoder().encode('a JWT header and payload');
      expect(native.sign(data)).toEqual(kp.sign(data));
      expect(native.verify(data, kp.sign(data))).toBe(true);
      expect(kp.verify(data, native.sign(data))).toBe(true);
      expect(native.verify(new TextEncoder().encode('other'), native.sign(data))).toBe(false);
    }
  });

  it('create new keys of the asked kind that nkeys reads back', () => {
    const user = createNativeKeyPair(Prefix.User);
    expect(user.getPublicKey()).toMatch(/^U[A-Z2-7]{55}$/);
    expect(fromSeed(user.getSeed()).getPublicKey()).toBe(user.getPublicKey());
    const data = new TextEncoder().encode('x');
    expect(fromPublic(user.getPublicKey()).verify(data, user.sign(data))).toBe(true);
    expect(createNativeKeyPair(Prefix.Account).getPublicKey()).toMatch(/^A/);
    expect(createNativeKeyPair(Prefix.User).getPublicKey()).not.toBe(user.getPublicKey());
  });

  it('refuse use after clear', () => {
    const kp = createNativeKeyPair(Prefix.User);
    kp.clear();
    expect(() => kp.getPublicKey()).toThrow('cleared');
  });
});

describe('decodeNatsJwt', () => {
  it("accepts what @nats-io/jwt's decode accepts and refuses what it refuses, with its messages", async () => {
    const { decode, encodeUser } = await import('@nats-io/jwt');
    const account = createAccount();
    const jwt = await encodeUser('u', createUser(), account);
    expect(decodeNatsJwt(jwt)).toEqual(decode(jwt));
    const [h, p, sig] = jwt.split('.') as [string, string, string];
    const tamperedPayload = Buffer.from(
      JSON.stringify({ ...(JSON.parse(Buffer.from(p, 'base64url').toString()) as object), name: 'mallory' }),
    ).toString('base64url');
    const badOnes = [
      `${h}.${tamperedPayload}.${sig}`,
      `${h}.${p}`,
      `${h}.${p}.${Buffer.alloc(64).toString('base64url')}`,
      `${Buffer.from('{"typ":"JWT","alg":"HS256"}').toString('base64url')}.${p}.${sig}`,
    ];
    for (const bad of badOnes) {
      expect(() => decode(bad)).toThrow();
      expect(() => decodeNatsJwt(bad)).toThrow();
      let theirs = '';
      try {
        decode(bad);
      } catch (err) {
        theirs = (err as Error).message;
      }
      expect(() => decodeNatsJwt(bad)).toThrow(theirs);
    }
  });

  it('verifies nonce signatures as nkeys does', () => {
    const user = createUser();
    const nonce = new TextEncoder().encode('the nonce');
    expect(verifyWithPublicNkey(user.getPublicKey(), nonce, user.sign(nonce))).toBe(true);
    expect(verifyWithPublicNkey(user.getPublicKey(), nonce, new Uint8Array(64))).toBe(false);
    expect(verifyWithPublicNkey(user.getPublicKey(), nonce, new Uint8Array(3))).toBe(false);
    expect(() => verifyWithPublicNkey('not a key', nonce, user.sign(nonce))).toThrow();
  });
});
