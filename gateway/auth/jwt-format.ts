/**
 * The compact serialization of a JWT, checked before any key is touched (pure; each problem is one sentence
 * naming the segment or the header parameter at fault).
 *
 * - Three dot-separated segments, each canonical base64url (RFC 7515 §2, RFC 4648 §5): no `=` padding, only
 *   the URL-safe alphabet, and exactly the text that re-encoding its bytes gives, so one token has one
 *   spelling (a last character with non-zero unused bits decodes to the same bytes and is refused). jose's
 *   decoder is lenient on all three, so a padded or re-spelled signature would otherwise verify.
 * - Header and payload are UTF-8 JSON objects (RFC 7519 §7.2) in which no object gives a key twice: JSON.parse
 *   keeps the last value of a repeated key, another verifier or a function's parser may keep the first, so
 *   `{"sub":"alice","sub":"mallory"}` would name two users (RFC 7515 §4 / RFC 7519 §4 let a recipient refuse
 *   it, and this gateway does).
 * - Header: `alg` a string other than `none`; `kid` a non-empty string when present; `typ` a JWT type
 *   (`JWT`, `application/jwt`, `<name>+jwt`); no `crit` (this gateway implements no extensions, and RFC 7515
 *   §4.1.11 requires refusing a token that names one it does not understand); no `b64` other than true (an
 *   unencoded payload, RFC 7797, is not a JWT); no `cty: JWT` (nested tokens are not unwrapped).
 */
import { hasRepeatedKey } from '../../common/call-envelope';

export type Segment = 'header' | 'payload' | 'signature';

export interface ParsedJwt {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
}

/** "a string", "a number", "null", "an array", ... for messages that say what was sent instead. */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' || t === 'undefined' ? `an ${t}` : `a ${t}`;
}

/** Why `text` is not canonical base64url, or undefined when it is. */
export function base64urlProblem(text: string): string | undefined {
  if (/=+$/.test(text)) return 'it ends with "=" padding, which JWTs leave out (RFC 7515 §2)';
  const bad = /[^A-Za-z0-9_-]/.exec(text);
  if (bad) {
    const hint = bad[0] === '+' || bad[0] === '/' ? ' (that is base64; JWTs use base64url, with - and _)' : '';
    return `it contains ${JSON.stringify(bad[0])}, which is not in the base64url alphabet A-Z a-z 0-9 - _${hint}`;
  }
  if (text.length % 4 === 1) return `its length (${text.length}) is not that of any base64url text`;
  if (Buffer.from(text, 'base64url').toString('base64url') !== text) {
    return 'it is not canonical: its last character has non-zero unused bits (re-encode the bytes)';
  }
  return undefined;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function decodeJsonObject(segment: string, what: Segment): Record<string, unknown> | string {
  const bytes = Buffer.from(segment, 'base64url');
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    return `its ${what} is not valid UTF-8`;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `its ${what} is not JSON`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return `its ${what} must be a JSON object, this one is ${kindOf(value)}`;
  }
  if (hasRepeatedKey(bytes, value)) {
    return `its ${what} gives a key twice in one object: JSON parsers disagree on which value counts (this one reads the last, others the first), so another verifier or a function could read a different ${what === 'header' ? 'header' : 'claim'}; issue the token with each key once`;
  }
  return value as Record<string, unknown>;
}

const JWT_TYPE = /^(application\/)?([a-z0-9.-]+\+)?jwt$/i;

/** Problems of the header's registered parameters that no key source could accept; undefined when none. */
export function headerProblem(header: Record<string, unknown>): string | undefined {
  const { alg, kid, typ, crit, b64, cty } = header;
  if (alg === undefined) return 'the token is malformed: its header has no "alg" (the signing algorithm)';
  if (typeof alg !== 'string') return `the token's alg header must be a string, got ${kindOf(alg)}`;
  if (alg.toLowerCase() === 'none')
    return 'the token uses the unsupported algorithm "none": unsigned tokens are never accepted';
  if (crit !== undefined) {
    if (!Array.isArray(crit) || crit.length === 0 || crit.some((c) => typeof c !== 'string' || c === '')) {
      return `the token's crit header must be a non-empty array of header names (RFC 7515 §4.1.11), got ${kindOf(crit)}; leave it out`;
    }
    return `the token's crit header names extensions this gateway does not support: ${crit.map((c) => JSON.stringify(c)).join(', ')}; send a token without crit`;
  }
  if (b64 !== undefined && b64 !== true) {
    return typeof b64 === 'boolean'
      ? "the token's b64 header is false (an unencoded payload, RFC 7797): a JWT's payload is always base64url; leave b64 out"
      : `the token's b64 header must be a boolean, got ${kindOf(b64)}; leave it out`;
  }
  if (kid !== undefined && (typeof kid !== 'string' || kid === '')) {
    return `the token's kid header must be a non-empty string, got ${typeof kid === 'string' ? 'an empty string' : kindOf(kid)}`;
  }
  if (typ !== undefined) {
    if (typeof typ !== 'string') return `the token's typ header must be a string, got ${kindOf(typ)}`;
    if (!JWT_TYPE.test(typ)) {
      return `the token's typ header ${JSON.stringify(typ)} is not a JWT type: use "JWT" (or a +jwt type such as "at+jwt"), or leave it out`;
    }
  }
  if (typeof cty === 'string' && /^(application\/)?jwt$/i.test(cty)) {
    return `the token's cty header ${JSON.stringify(cty)} marks a nested JWT, which this gateway does not unwrap: send the inner token`;
  }
  return undefined;
}

/**
 * Parses and checks a compact JWT; the problem when it is malformed (the message is complete, for a 401).
 * The signature segment may be empty only so that `alg: none` is reported as such.
 */
export function parseCompactJwt(token: string, maxLength: number): ParsedJwt | { problem: string } {
  const malformed = (why: string): { problem: string } => ({ problem: `the token is malformed: ${why}` });
  if (token.length > maxLength) return malformed(`it is longer than ${maxLength} characters`);
  const parts = token.split('.');
  if (parts.length !== 3) {
    const jwe = parts.length === 5 ? ' (five is an encrypted JWE, which this gateway does not accept)' : '';
    return malformed(
      `a JWT has three dot-separated parts (header.payload.signature), this one has ${parts.length}${jwe}`,
    );
  }
  const [h, p, s] = parts as [string, string, string];
  const segments: [Segment, string][] = [
    ['header', h],
    ['payload', p],
    ['signature', s],
  ];
  for (const [what, text] of segments) {
    if (text === '' && what !== 'signature') return malformed(`its ${what} is empty`);
    const problem = base64urlProblem(text);
    if (problem) return malformed(`its ${what} is not canonical base64url: ${problem}`);
  }
  const header = decodeJsonObject(h, 'header');
  if (typeof header === 'string') return malformed(header);
  const problem = headerProblem(header);
  if (problem) return { problem };
  if (s === '') return malformed('it has no signature');
  const claims = decodeJsonObject(p, 'payload');
  if (typeof claims === 'string') return malformed(claims);
  return { header, claims };
}
