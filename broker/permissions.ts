/**
 * Authentication (a single token, or users with a token or user/password) and per-user publish/subscribe
 * allow lists, checked as nats-server checks them. A user with a publish allow list may also publish to
 * `_INBOX.>` so that it can answer requests (a simple form of nats-server's allow_responses).
 */
import { timingSafeEqual } from 'node:crypto';
import { subjectMatches } from './subject';

export interface BrokerUser {
  token?: string;
  user?: string;
  password?: string;
  permissions?: { publish?: string[]; subscribe?: string[] };
}

/** What a client sent in CONNECT that matters for authentication. */
export interface Credentials {
  auth_token?: unknown;
  user?: unknown;
  pass?: unknown;
}

/** Subjects are handled as latin1 strings (bytes); configured patterns are converted the same way. */
function toWire(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

const INBOX = '_INBOX.>';

export class SubjectAllowList {
  private readonly patterns: string[];
  private readonly cache = new Map<string, boolean>();

  constructor(patterns: string[]) {
    this.patterns = patterns.map(toWire);
  }

  allows(subject: string): boolean {
    const hit = this.cache.get(subject);
    if (hit !== undefined) return hit;
    const ok = this.patterns.some((p) => subjectMatches(p, subject));
    if (this.cache.size >= 1024) this.cache.clear();
    this.cache.set(subject, ok);
    return ok;
  }
}

export interface Permissions {
  publish?: SubjectAllowList;
  subscribe?: SubjectAllowList;
}

export interface AuthResult {
  ok: boolean;
  /** For logs: which user (never the secret). */
  identity?: string;
  permissions?: Permissions;
}

export class Authenticator {
  private readonly users: Array<{ user: BrokerUser; permissions?: Permissions }>;

  constructor(
    private readonly token: string | undefined,
    users: BrokerUser[] | undefined,
  ) {
    this.users = (users ?? []).map((user) => ({ user, permissions: compile(user) }));
    if (token !== undefined && this.users.length > 0)
      throw new Error('broker: configure either token or users, not both');
    for (const u of this.users) {
      const { token: t, user, password } = u.user;
      if (t === undefined && (user === undefined || password === undefined)) {
        throw new Error('broker: every user needs a token, or a user and a password');
      }
    }
  }

  get required(): boolean {
    return this.token !== undefined || this.users.length > 0;
  }

  authenticate(c: Credentials): AuthResult {
    if (this.token !== undefined)
      return { ok: typeof c.auth_token === 'string' && same(c.auth_token, this.token), identity: 'token' };
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
  return {
    publish: p.publish ? new SubjectAllowList([...p.publish, INBOX]) : undefined,
    subscribe: p.subscribe ? new SubjectAllowList(p.subscribe) : undefined,
  };
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
