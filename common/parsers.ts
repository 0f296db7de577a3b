/**
 * The parsers of settings (a setting's `parse`): each turns the text of a variable into its value, or throws
 * a ConfigError naming the variable and what it accepts. Tables import them as `parsers.*`.
 */
import { isIP } from 'node:net';
import { ConfigError } from './errors';
import { LOG_LEVELS } from './log-levels';
import { NAME_RULES, isNamespaceName } from './names';

/** Turns a setting's text into its value, or throws a ConfigError naming the variable and what it accepts. */
export type Parser<T> = (value: string, name: string) => T;

export interface ListenAddress {
  host: string;
  port: number;
}

export function invalid(name: string, value: string, accepts: string): ConfigError {
  return new ConfigError(`${name}="${value}" is not valid: it accepts ${accepts}`);
}

export const text: Parser<string> = (v) => v;

/** Any value `ok` accepts; `accepts` says which in the error. */
export function matching(accepts: string, ok: (value: string) => boolean): Parser<string> {
  return (v, name) => {
    if (!ok(v)) throw invalid(name, v, accepts);
    return v;
  };
}

export function wholeNumber(range: { min?: number; max?: number } = {}): Parser<number> {
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  return (v, name) => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v) || n < min || n > max) throw invalid(name, v, `a whole number from ${min} to ${max}`);
    return n;
  };
}

/** A TCP port; `0` picks a free one when `allowZero`. */
export function port(allowZero = false): Parser<number> {
  return wholeNumber({ min: allowZero ? 0 : 1, max: 65535 });
}

export const bool: Parser<boolean> = (v, name) => {
  const lower = v.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw invalid(name, v, 'true or false');
};

export function oneOf<T extends string>(values: readonly T[]): Parser<T> {
  return (v, name) => {
    if (!(values as readonly string[]).includes(v)) throw invalid(name, v, `one of ${values.join(', ')}`);
    return v as T;
  };
}

export const logLevel = oneOf(LOG_LEVELS);

/** Comma-separated values, blanks dropped. */
export const commaList: Parser<string[]> = (v) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

/** Comma-separated NATS URLs (nats://host:port), at least one. */
export const natsUrls: Parser<string[]> = (v, name) => {
  const servers = commaList(v, name);
  const ok = (s: string): boolean => {
    try {
      const u = new URL(s.includes('://') ? s : `nats://${s}`);
      return ['nats:', 'tls:', 'ws:', 'wss:'].includes(u.protocol) && u.hostname !== '';
    } catch {
      return false;
    }
  };
  if (servers.length === 0 || !servers.every(ok))
    throw invalid(name, v, 'comma-separated NATS URLs such as nats://127.0.0.1:4222');
  return servers;
};

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** An address to listen on: an IPv4 or IPv6 address (brackets optional) or a host name; IPv6 unbracketed. */
function listenHost(host: string): string | undefined {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(bare) !== 0) return bare;
  return bare === host && HOST_NAME.test(host) ? host : undefined;
}

/** The host to listen on: an IP address or a host name. */
export const host: Parser<string> = (v, name) => {
  const h = listenHost(v);
  if (h === undefined) throw invalid(name, v, 'an IP address or a host name, such as 127.0.0.1, ::1 or localhost');
  return h;
};

/** host:port or a bare port (host 0.0.0.0); an IPv6 host in brackets, `[::1]:8080`. */
export const listenAddress: Parser<ListenAddress> = (v, name) => {
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(v);
  const p = m ? Number(m[2]) : NaN;
  const h = m?.[1] ? listenHost(m[1]) : '0.0.0.0';
  if (!m || p > 65535 || h === undefined)
    throw invalid(
      name,
      v,
      'host:port or a port, such as 0.0.0.0:8080, [::1]:8080 or 8080 (0 picks a free port); the host an IP address or a host name',
    );
  return { host: h, port: p };
};

/** A Kubernetes namespace name. */
export const namespaceName: Parser<string> = matching(NAME_RULES.namespace, isNamespaceName);

export const json: Parser<unknown> = (v, name) => {
  try {
    return JSON.parse(v) as unknown;
  } catch (err) {
    throw new ConfigError(`${name} is not valid JSON: ${(err as Error).message}`);
  }
};

/** An http(s) URL. */
export const httpUrl = (what: string): Parser<string> =>
  matching(`an http(s) URL of ${what}`, (v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  });
