/**
 * Settings: each part lists its settings in one table (`<part>/settings.ts`) of `setting({...})` rows: the
 * variable, the flag the CLI maps onto it, the default, the parser and the help text. Loaders read through
 * the table, the CLI builds its options from it, and the README's configuration reference is rendered from
 * it. A parser (parsers.ts) names the variable and what it accepts when a value is wrong, so a process
 * stops at start with a clear message. Light on purpose (no zod, yaml or winston): the CLI imports every
 * table.
 */
import { ConfigError } from './errors';
import { KUBECONFIG_VAR } from './kube-access';
import { LOG_LEVEL_VAR } from './log-levels';
import { logLevel, text } from './parsers';
import type { Parser } from './parsers';

export type { Parser, ListenAddress } from './parsers';

export type Env = Record<string, string | undefined>;

export interface SettingSpec<T> {
  /** The environment variable, e.g. FNMESH_LISTEN. */
  env: string;
  /** The CLI flag that sets it, with its value's placeholder: `--listen <host:port>`. */
  flag: string;
  /** What it does (the CLI help and the README's meaning column). */
  help: string;
  parse: Parser<T>;
  /** The value used when unset, written as a user would write it (it goes through `parse`). */
  default?: string;
  /** Set when the setting must be given: what to set it to, for the error message. */
  required?: string;
  /** What an unset setting without a default means, for help and README ("all namespaces", "random"). */
  unset?: string;
}

/** A setting whose parser makes a V; `read` gives R: V, or V | undefined when it has no default and is optional. */
export interface Setting<V, R = V> extends SettingSpec<V> {
  /** The value from env (blank counts as unset), else the default. */
  read(env: Env): R;
}

/** A table of a part's settings, in the order help and README list them. */
export type SettingsTable = Record<string, Setting<unknown, unknown>>;
export type SettingValues<S extends SettingsTable> = { [K in keyof S]: ReturnType<S[K]['read']> };

export function setting<V>(spec: SettingSpec<V> & { default: string }): Setting<V>;
export function setting<V>(spec: SettingSpec<V> & { required: string }): Setting<V>;
export function setting<V>(spec: SettingSpec<V>): Setting<V, V | undefined>;
export function setting<V>(spec: SettingSpec<V>): Setting<V, V | undefined> {
  return {
    ...spec,
    read(env: Env): V | undefined {
      const value = rawValue(env, spec.env) ?? spec.default;
      if (value !== undefined) return spec.parse(value, spec.env);
      if (spec.required !== undefined) throw new ConfigError(`${spec.env} is required: set it to ${spec.required}`);
      return undefined;
    },
  };
}

/** Another part's setting with other help or another default (the same variable, flag and parser). */
export function variant<V, R>(
  base: Setting<V, R>,
  changes: Partial<Omit<SettingSpec<V>, 'env' | 'parse'>>,
): Setting<V, R> {
  return setting({ ...base, ...changes }) as Setting<V, R>;
}

/** Every setting of a table, read and checked in table order. */
export function readSettings<S extends SettingsTable>(env: Env, table: S): SettingValues<S> {
  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(table)) values[key] = s.read(env);
  return values as SettingValues<S>;
}

/** How help and README show a setting's default: the value, "required", or what unset means. */
export function describeDefault(s: SettingSpec<unknown>): string | undefined {
  if (s.default !== undefined) return s.default;
  if (s.required !== undefined) return 'required';
  return s.unset;
}

function rawValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** FNMESH_LOG_LEVEL, the one setting every part has. */
export const logLevelSetting = setting({
  env: LOG_LEVEL_VAR,
  flag: '--log-level <level>',
  default: 'info',
  parse: logLevel,
  help: '`debug`, `info`, `warn`, `error` or `silent`',
});

/** FNMESH_KUBECONFIG, the same for every part that talks to the API server (gateway, operator). */
export const kubeconfigSetting = setting({
  env: KUBECONFIG_VAR,
  flag: '--kubeconfig <file>',
  unset: "`KUBECONFIG`, `~/.kube/config`, else the pod's ServiceAccount",
  parse: text,
  help: 'kubeconfig of the API server',
});
