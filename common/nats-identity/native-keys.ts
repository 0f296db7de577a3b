/**
 * nkeys key pairs whose ed25519 work runs in node's crypto (OpenSSL) instead of @nats-io/nkeys' tweetnacl.
 * nkeys recomputes the key pair from the seed with a pure-JavaScript scalar multiplication on every
 * getPublicKey() and twice on every sign(): about 5 of them per minted user JWT, 10–90 ms on this machine,
 * which made the operator's reconciles in FNMESH_NATS_AUTH=jwt mode wait on CPU. Here the public key is
 * computed once and signing is native; the bytes are the same (ed25519 is deterministic: tests compare them
 * with nkeys' own). The nkeys codec (seed and public key encoding) stays nkeys'.
 */
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { Prefix, fromPublic, type KeyPair } from '@nats-io/nkeys';
// The nkeys text encoding (prefix byte, base32, CRC-16) is not exported from the package's index.
import { Codec } from '@nats-io/nkeys/lib/codec';

/** PKCS #8 DER of an ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SubjectPublicKeyInfo DER of an ed25519 public key, up to its 32 bytes (RFC 8410). */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const publicKeyObjects = new Map<string, KeyObject>();
const MAX_CACHED_PUBLIC_KEYS = 1024;

/** The ed25519 key of a public nkey ("U…", "A…", "O…"); throws on a malformed one, as nkeys' fromPublic does. */
function publicKeyObject(nkey: string): KeyObject {
  let key = publicKeyObjects.get(nkey);
  if (key === undefined) {
    fromPublic(nkey); // validates the prefix and checksum, with nkeys' own errors
    const raw = Codec._decode(new TextEncoder().encode(nkey)).slice(1);
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
    if (publicKeyObjects.size >= MAX_CACHED_PUBLIC_KEYS) publicKeyObjects.clear();
    publicKeyObjects.set(nkey, key);
  }
  return key;
}

/** nkeys' `fromPublic(nkey).verify(data, sig)`, natively; false (never a throw) for a bad signature. */
export function verifyWithPublicNkey(nkey: string, data: Uint8Array, sig: Uint8Array): boolean {
  const key = publicKeyObject(nkey);
  try {
    return verify(null, data, key, sig);
  } catch {
    return false;
  }
}

/**
 * @nats-io/jwt's `decode`: the same checks in the same order with the same messages (three parts, typ, alg,
 * a valid issuer key, the signature over the header and payload for v2 or the payload for v1), natively.
 */
export function decodeNatsJwt<T>(jwt: string): T {
  const chunks = jwt.split('.');
  if (chunks.length !== 3) throw new Error(`invalid jwt - ${chunks.length} chunks`);
  const h = JSON.parse(Buffer.from(chunks[0]!, 'base64url').toString('utf8')) as { typ?: unknown; alg?: unknown };
  if (h.typ !== 'jwt' && h.typ !== 'JWT') throw new Error(`not a nats jwt - typ ${String(h.typ)}`);
  if (h.alg !== 'ed25519' && h.alg !== 'ed25519-nkey') throw new Error(`not a nats jwt - alg ${String(h.alg)}`);
  const body = JSON.parse(Buffer.from(chunks[1]!, 'base64url').toString('utf8')) as { iss?: unknown };
  if (typeof body.iss !== 'string') throw new Error('invalid public key');
  const signed = h.alg === 'ed25519-nkey' ? `${chunks[0]}.${chunks[1]}` : chunks[1]!;
  const sig = Buffer.from(chunks[2]!, 'base64url');
  if (!verifyWithPublicNkey(body.iss, new TextEncoder().encode(signed), sig))
    throw new Error('sig verification failed');
  return body as T;
}

function privateKeyOf(rawSeed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, rawSeed]), format: 'der', type: 'pkcs8' });
}

function rawPublicKey(key: KeyObject): Buffer {
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (typeof x !== 'string') throw new Error('node did not export the ed25519 public key');
  return Buffer.from(x, 'base64url');
}

/** A KeyPair over an nkeys seed (its text form, e.g. "SU…", "SA…") with native signing. */
export function nativeKeyPair(seed: Uint8Array): KeyPair {
  const { prefix, buf } = Codec.decodeSeed(seed);
  const privateKey = privateKeyOf(buf);
  const publicKey = new TextDecoder().decode(Codec.encode(prefix, rawPublicKey(privateKey)));
  const publicKeyObject = createPublicKey(privateKey);
  let cleared = false;
  const live = (): void => {
    if (cleared) throw new Error('the key pair was cleared');
  };
  return {
    getPublicKey: () => (live(), publicKey),
    getSeed: () => (live(), seed),
    getPrivateKey: () => {
      live();
      return Codec.encode(Prefix.Private, Buffer.concat([buf, rawPublicKey(privateKey)]));
    },
    sign: (input) => (live(), new Uint8Array(sign(null, input, privateKey))),
    verify: (input, sig) => (live(), verify(null, input, publicKeyObject, sig)),
    clear: () => {
      cleared = true;
    },
    seal: () => {
      throw new Error('sealing is for curve keys; these are ed25519 signing keys');
    },
    open: () => {
      throw new Error('sealing is for curve keys; these are ed25519 signing keys');
    },
  };
}

/** A new random key pair of `prefix` (User, Account, Operator), native. */
export function createNativeKeyPair(prefix: Prefix): KeyPair {
  return nativeKeyPair(Codec.encodeSeed(prefix, randomBytes(32)));
}
