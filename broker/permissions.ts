/**
 * Authentication (a single token, users with a token or user/password, or decentralized JWTs) and
 * per-user permissions checked as nats-server checks them: publish and subscribe allow and deny lists,
 * queue-restricted subscribe entries (`"subject queue"`), and `allow_responses`. Decisions are cached per
 * subject, so a message costs one map lookup.
 */
import { timingSafeEqual } from 'node:crypto';
import { subjectMatches } from './subject';
import { JwtAuthenticator, type ConnectionLimits, type JwtAccount } from './jwt-auth';

/** nats-server's permissions: allow and deny lists per direction, and response permissions. */
export interface PermissionSpec {
  publish?: { allow?: string[]; deny?: string[] };
  /** Entries are subjects, or `"subject queue"` to allow (or deny) only that queue group. */
  subscribe?: { allow?: string[]; deny?: string[] };
  /** allow_responses: publish to reply subjects of received messages, `max` times within `ttlMs`. */
  responses?: { max: number; ttlMs: number };
}

export interface BrokerUser {
  token?: string;
  user?: string;
  password?: string;
  /** Allow lists; a publish allow list also allows `_INBOX.>` so that the user can answer requests. */
  permissions?: { publish?: string[]; subscribe?: string[] };
}

/** Decentralized JWT auth: trusted operators and the account JWTs a memory resolver preloads. */
export interface JwtTrust {
  /** Operator JWTs or operator public keys. */
  operators: string[];
  /** Account JWTs (signed by a trusted operator key). */
  accounts: string[];
}

/** What a client sent in CONNECT that matters for authentication. */
export interface Credentials {
  auth_token?: unknown;
  user?: unknown;
  pass?: unknown;
  jwt?: unknown;
  sig?: unknown;
}

/** nats-server's defaults for allow_responses given as 0: one reply within two minutes. */
const DEFAULT_RESPONSE_MAX = 1;
const DEFAULT_RESPONSE_TTL_MS = 120_000;
const CACHE_LIMIT = 1024;
const INBOX = '_INBOX.>';

/** Subjects are handled as latin1 strings (bytes); configured patterns are converted the same way. */
function toWire(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function anyMatches(patterns: readonly string[], subject: string): boolean {
  for (const p of patterns) if (subjectMatches(p, subject)) return true;
  return false;
}

/** A queue name matches an entry's queue literally, or as a subject pattern when the entry has wildcards. */
function queueMatches(queue: string, pattern: string): boolean {
  return queue === pattern || subjectMatches(pattern, queue);
}

/** A subscribe list split into plain entries and queue entries. */
class SubscribeList {
  readonly plain: string[] = [];
  readonly queues: Array<{ subject: string; queue: string }> = [];
  constructor(entries: string[]) {
    for (const e of entries.map(toWire)) {
      const [subject, queue] = e.trim().split(/\s+/);
      if (!subject) continue;
      if (queue === undefined) this.plain.push(subject);
      else this.queues.push({ subject, queue });
    }
  }
  /** As nats-server: plain entries match the subject; with a queue, matching queue entries decide. */
  matches(subject: string, queue: string | undefined): boolean {
    let hit = anyMatches(this.plain, subject);
    if (queue !== undefined) {
      const q = this.queues.filter((e) => subjectMatches(e.subject, subject));
      if (q.length > 0) hit = q.some((e) => queueMatches(queue, e.queue));
    }
    return hit;
  }
}

export class Permissions {
  private readonly pubAllow: string[] | undefined;
  private readonly pubDeny: string[] | undefined;
  private readonly subAllow: SubscribeList | undefined;
  private readonly subDeny: SubscribeList | undefined;
  readonly responses: { max: number; ttlMs: number } | undefined;
  /** Whether any publish restriction applies (else publishing is never checked). */
  readonly restrictsPublish: boolean;
  readonly restrictsSubscribe: boolean;
  private readonly pubCache = new Map<string, true>();
  private readonly deliverCache = new Map<string, boolean>();

  constructor(spec: PermissionSpec) {
    const r = spec.responses;
    this.responses = r && {
      max: r.max === 0 ? DEFAULT_RESPONSE_MAX : r.max,
      ttlMs: r.ttlMs === 0 ? DEFAULT_RESPONSE_TTL_MS : r.ttlMs,
    };
    // with response permissions the blanket publish allow is off, as in nats-server
    const allow = spec.publish?.allow ?? (this.responses ? [] : undefined);
    this.pubAllow = allow?.map(toWire);
    this.pubDeny = spec.publish?.deny?.length ? spec.publish.deny.map(toWire) : undefined;
    this.subAllow = spec.subscribe?.allow ? new SubscribeList(spec.subscribe.allow) : undefined;
    this.subDeny = spec.subscribe?.deny?.length ? new SubscribeList(spec.subscribe.deny) : undefined;
    this.restrictsPublish = this.pubAllow !== undefined || this.pubDeny !== undefined;
    this.restrictsSubscribe = this.subAllow !== undefined || this.subDeny !== undefined;
  }

  /** Publish allowed by the allow and deny lists (reply permissions are tracked by the connection). */
  canPublish(subject: string): boolean {
    if (this.pubCache.has(subject)) return true;
    let ok = this.pubAllow === undefined || anyMatches(this.pubAllow, subject);
    if (ok && this.pubDeny) ok = !anyMatches(this.pubDeny, subject);
    // refusals are not cached: most are reply subjects (each used once), which would only churn the cache
    if (!ok) return false;
    if (this.pubCache.size >= CACHE_LIMIT) this.pubCache.clear();
    this.pubCache.set(subject, true);
    return true;
  }

  canSubscribe(subject: string, queue: string | undefined): boolean {
    if (this.subAllow && !this.subAllow.matches(subject, queue)) return false;
    if (this.subDeny) {
      let denied = anyMatches(this.subDeny.plain, subject);
      if (queue !== undefined) {
        const q = this.subDeny.queues.filter((e) => subjectMatches(e.subject, subject));
        if (q.length > 0) denied = q.some((e) => queueMatches(queue, e.queue));
      }
      if (denied) return false;
    }
    return true;
  }

  /**
   * Whether an allowed wildcard subscription overlaps a deny entry, so that its messages must be filtered
   * on delivery (nats-server does not deliver what the subscriber may not subscribe to).
   */
  needsDeliveryFilter(subject: string): boolean {
    if (!this.subDeny || this.subDeny.plain.length === 0) return false;
    if (!/(^|\.)(\*|>)(\.|$)/.test(subject)) return false;
    return this.subDeny.plain.some((d) => subjectMatches(subject, d) || overlaps(subject, d));
  }

  /** Whether a message on `subject` may be delivered to a filtered subscription. */
  canReceive(subject: string): boolean {
    const hit = this.deliverCache.get(subject);
    if (hit !== undefined) return hit;
    const ok = !anyMatches(this.subDeny?.plain ?? [], subject);
    if (this.deliverCache.size >= CACHE_LIMIT) this.deliverCache.clear();
    this.deliverCache.set(subject, ok);
    return ok;
  }
}

/** Whether two subject patterns can match a common subject. */
function overlaps(a: string, b: string): boolean {
  const x = a.split('.');
  const y = b.split('.');
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const s = x[i];
    const t = y[i];
    if (s === '>' || t === '>') return s !== undefined && t !== undefined;
    if (s === undefined || t === undefined) return false;
    if (s !== '*' && t !== '*' && s !== t) return false;
  }
  return true;
}

export type AuthResult =
  | { ok: false; reason?: string }
  | {
      ok: true;
      /** For logs: which user (never the secret). */
      identity?: string;
      permissions?: Permissions;
      /** JWT users: their account (for its connection limit), limits and expiry. */
      account?: JwtAccount;
      limits?: ConnectionLimits;
      expiresAt?: number;
    };

export class Authenticator {
  private readonly users: Array<{ user: BrokerUser; permissions?: Permissions }>;
  private readonly jwt: JwtAuthenticator | undefined;

  constructor(
    private readonly token: string | undefined,
    users: BrokerUser[] | undefined,
    trust?: JwtTrust,
  ) {
    this.users = (users ?? []).map((user) => ({ user, permissions: compile(user) }));
    this.jwt = trust ? new JwtAuthenticator(trust.operators, trust.accounts) : undefined;
    const modes = [token !== undefined, this.users.length > 0, this.jwt !== undefined].filter(Boolean).length;
    if (modes > 1) throw new Error('broker: configure either token or users or JWT (operator) auth, not several');
    for (const u of this.users) {
      const { token: t, user, password } = u.user;
      if (t === undefined && (user === undefined || password === undefined)) {
        throw new Error('broker: every user needs a token, or a user and a password');
      }
    }
  }

  get required(): boolean {
    return this.token !== undefined || this.users.length > 0 || this.jwt !== undefined;
  }

  /** Whether INFO carries a nonce for the client to sign (JWT auth). */
  get nonceRequired(): boolean {
    return this.jwt !== undefined;
  }

  authenticate(c: Credentials, nonce = '', clientIp?: string): AuthResult {
    if (this.jwt) {
      const r = this.jwt.authenticate(c, nonce, clientIp);
      if (!r.ok) return r;
      return {
        ok: true,
        identity: r.identity,
        permissions: r.permissions && new Permissions(r.permissions),
        account: r.account,
        limits: r.limits,
        expiresAt: r.expiresAt,
      };
    }
    if (this.token !== undefined)
      return typeof c.auth_token === 'string' && same(c.auth_token, this.token)
        ? { ok: true, identity: 'token' }
        : { ok: false };
    if (this.users.length === 0) return { ok: true };
    for (const { user, permissions } of this.users) {
      if (user.token !== undefined) {
        if (typeof c.auth_token === 'string' && same(c.auth_token, user.token))
          return { ok: true, identity: user.user ?? 'token-user', permissions };
        continue;
      }
      if (c.user === user.user && typeof c.pass === 'string' && same(c.pass, user.password ?? '')) {
        return { ok: true, identity: user.user, permissions };
      }
    }
    return { ok: false };
  }
}

function compile(user: BrokerUser): Permissions | undefined {
  const p = user.permissions;
  if (!p || (!p.publish && !p.subscribe)) return undefined;
  return new Permissions({
    publish: p.publish && { allow: [...p.publish, INBOX] },
    subscribe: p.subscribe && { allow: p.subscribe },
  });
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
