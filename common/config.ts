/**
 * Typed readers for configuration from env (and flags mapped onto the same names). Each reader names the
 * variable and what it accepts when a value is wrong, so a process stops at start with a clear message.
 */
import { ConfigError } from './errors';
import { LOG_LEVELS, type LogLevel } from './logger';

export type Env = Record<string, string | undefined>;

function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

export function readString(env: Env, name: string, fallback: string): string;
export function readString(env: Env, name: string): string | undefined;
export function readString(env: Env, name: string, fallback?: string): string | undefined {
  return raw(env, name) ?? fallback;
}

export function requireString(env: Env, name: string, what: string): string {
  const v = raw(env, name);
  if (v === undefined) throw new ConfigError(`${name} is required: set it to ${what}`);
  return v;
}

export function readInt(env: Env, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  const min = range.min ?? Number.MIN_SAFE_INTEGER;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!/^-?\d+$/.test(v) || n < min || n > max) {
    throw new ConfigError(`${name}="${v}" is not valid: it accepts a whole number from ${min} to ${max}`);
  }
  return n;
}

export function readBool(env: Env, name: string, fallback: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  const lower = v.toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(lower)) return true;
  if (['0', 'false', 'no', 'off'].includes(lower)) return false;
  throw new ConfigError(`${name}="${v}" is not valid: it accepts true or false`);
}

export function readEnum<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const v = raw(env, name);
  if (v === undefined) return fallback;
  if (!(values as readonly string[]).includes(v)) {
    throw new ConfigError(`${name}="${v}" is not valid: it accepts one of ${values.join(', ')}`);
  }
  return v as T;
}

export function readLogLevel(env: Env, name = 'FNMESH_LOG_LEVEL'): LogLevel {
  return readEnum(env, name, LOG_LEVELS, 'info');
}

/** A comma-separated list of NATS URLs (nats://host:port). */
export function readNatsServers(env: Env, name: string, fallback?: string): string[] | undefined {
  const v = raw(env, name) ?? fallback;
  if (v === undefined) return undefined;
  const servers = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of servers) {
    let ok = false;
    try {
      const u = new URL(s.includes('://') ? s : `nats://${s}`);
      ok = ['nats:', 'tls:', 'ws:', 'wss:'].includes(u.protocol) && u.hostname !== '';
    } catch {
      ok = false;
    }
    if (!ok)
      throw new ConfigError(
        `${name}="${v}" is not valid: it accepts comma-separated NATS URLs such as nats://127.0.0.1:4222`,
      );
  }
  return servers;
}

/** host:port or a bare port; returns {host, port}. */
export function readListen(env: Env, name: string, fallback: string): { host: string; port: number } {
  const v = raw(env, name) ?? fallback;
  const m = /^(?:(.*):)?(\d{1,5})$/.exec(v);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535)
    throw new ConfigError(
      `${name}="${v}" is not valid: it accepts host:port or a port, such as 0.0.0.0:8080 or 8080 (0 picks a free port)`,
    );
  return { host: m[1] || '0.0.0.0', port };
}

export function readJson(env: Env, name: string): unknown {
  const v = raw(env, name);
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v);
  } catch (err) {
    throw new ConfigError(`${name} is not valid JSON: ${(err as Error).message}`);
  }
}
