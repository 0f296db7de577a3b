/**
 * The standard NATS `.creds` file (what `nsc` writes and every NATS client reads): the user JWT and the
 * user's nkey seed, each between BEGIN/END armor lines. Formatting uses @nats-io/jwt's `fmtCreds`; parsing is
 * ours because a start-up error must say which part is wrong (nats.js only says "unable to parse").
 */
import { fmtCreds, type ClaimsData, type User } from '@nats-io/jwt';
import { decodeNatsJwt, nativeKeyPair } from './native-keys';
import { ConfigError } from '../errors';
import { seedProblem } from './trust-chain';

export function formatCreds(jwt: string, seed: string): string {
  return new TextDecoder().decode(fmtCreds(jwt, nativeKeyPair(new TextEncoder().encode(seed))));
}

export interface ParsedCreds {
  jwt: string;
  /** The user's nkey seed (`SU…`). */
  seed: string;
  publicKey: string;
  claims: ClaimsData<User>;
  /** From the JWT's exp; undefined: it never expires. */
  expiresAt?: Date;
  issuedAt: Date;
}

/** An armored block `---…BEGIN <label>…---` … `---…END <label>…---` (nsc uses 5 dashes before, 6 after). */
const ARMOR = /^\s*-{3,}\s*BEGIN ([A-Z0-9 ]+?)\s*-{3,}\s*$([\s\S]*?)^\s*-{3,}\s*END \1\s*-{3,}\s*$/gm;

function armoredBlocks(text: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of text.matchAll(ARMOR)) {
    if (!blocks.has(m[1]!)) blocks.set(m[1]!, m[2]!.trim());
  }
  return blocks;
}

const JWT_LABEL = 'NATS USER JWT';
const SEED_LABEL = 'USER NKEY SEED';

/**
 * The JWT and seed of a `.creds` text; `source` names the file and `fix` what to do, in every error: no JWT
 * block, no seed block, a JWT that is not a user JWT or whose signature fails, a seed of another kind (an
 * account seed where a user seed belongs), or a seed that is not the JWT's user.
 */
export function parseCreds(text: string, source: string, fix: string): ParsedCreds {
  const known = parsedTexts.get(text);
  if (known) return known;
  const parsed = parseCredsText(text, source, fix);
  if (parsedTexts.size >= PARSED_CACHE_SIZE) parsedTexts.delete(parsedTexts.keys().next().value!);
  parsedTexts.set(text, parsed);
  return parsed;
}

/**
 * Texts parsed before (a valid parse depends on nothing but the text): the signature check and the key
 * derivation cost tens of milliseconds of one core, and a part reads its one file at start, on every
 * reconnect and at every rotation check. Failures are not kept, so their message always names the caller's file.
 */
const PARSED_CACHE_SIZE = 16;
const parsedTexts = new Map<string, ParsedCreds>();

function parseCredsText(text: string, source: string, fix: string): ParsedCreds {
  const fail = (problem: string): never => {
    throw new ConfigError(`${source} ${problem}: ${fix}`);
  };
  const blocks = armoredBlocks(text);
  const jwt = blocks.get(JWT_LABEL);
  if (!jwt) fail(`is not a NATS credentials file (no "-----BEGIN ${JWT_LABEL}-----" block)`);
  const seed = blocks.get(SEED_LABEL);
  if (!seed) fail(`has no user seed (no "-----BEGIN ${SEED_LABEL}-----" block)`);
  let claims: ClaimsData<User>;
  try {
    claims = decodeNatsJwt<ClaimsData<User>>(jwt!);
  } catch (err) {
    return fail(`holds a malformed user JWT (${(err as Error).message})`);
  }
  const type = claims.nats?.type ?? claims.type;
  if (type !== 'user') fail(`holds ${type ? `an ${type}` : 'a'} JWT where a user JWT belongs`);
  const problem = seedProblem(seed!, 'user');
  if (problem) fail(`has a seed that ${problem}`);
  const publicKey = nativeKeyPair(new TextEncoder().encode(seed!)).getPublicKey();
  if (publicKey !== claims.sub) fail(`has a seed that does not belong to its JWT's user ${claims.sub}`);
  const parsed: ParsedCreds = { jwt: jwt!, seed: seed!, publicKey, claims, issuedAt: new Date(claims.iat * 1000) };
  if (claims.exp) parsed.expiresAt = new Date(claims.exp * 1000);
  return parsed;
}

/** Refuses credentials the server would refuse for their dates (expired, or a clock that is far off). */
export function checkCredsDates(creds: ParsedCreds, now: Date, source: string, fix: string): void {
  if (creds.expiresAt && creds.expiresAt.getTime() <= now.getTime()) {
    throw new ConfigError(
      `${source} holds a user JWT that expired at ${creds.expiresAt.toISOString()} (this machine's clock says ${now.toISOString()}): ${fix}, or correct the clock if it is wrong`,
    );
  }
  const nbf = creds.claims.nbf;
  if (nbf && nbf * 1000 > now.getTime()) {
    throw new ConfigError(
      `${source} holds a user JWT not valid before ${new Date(nbf * 1000).toISOString()} (this machine's clock says ${now.toISOString()}): correct the clock`,
    );
  }
}
