/**
 * Whether an object read from the API server still holds everything the operator applies. Pure.
 *
 * A server-side apply of an unchanged object is still one API write; to make steady state cost zero
 * writes the reconciler applies only when `driftPaths(desired, observed)` is not empty. The comparison is
 * a subset check in the spirit of server-side apply: the server adds defaults (observed may hold more),
 * lists of named items (containers, env, ports, owner references) are matched by name, other lists
 * (command, args, capabilities) must be equal, and resource quantities are compared by value (the server
 * rewrites `0.1` as `100m`).
 *
 * Observed items that are not desired are someone else's (a container added by hand), except in the lists of
 * `ownedNames`: there an item of one of the given names that is no longer desired is drift too, so that a
 * setting taken out of the spec (a sidecar variable the operator stops setting, an image pull Secret) reaches
 * the pods. An empty desired list or string matches an absent one (the API server omits them).
 */

type Json = unknown;

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][-+]?\d+)?$/;
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a Kubernetes quantity (`100m` → 0.1, `64Mi` → 67108864); undefined when not one. */
export function quantityValue(q: string): number | undefined {
  const m = QUANTITY.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  if (/^[eE]/.test(suffix)) return n * 10 ** Number(suffix.slice(1));
  const factor = SUFFIX[suffix];
  return factor === undefined ? undefined : n * factor;
}

function isObject(v: Json): v is Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function isNamedList(v: Json[]): boolean {
  return v.length > 0 && v.every((x) => isObject(x) && typeof x.name === 'string');
}

function underResources(path: string): boolean {
  return /\.resources\.(requests|limits)\.[^.]+$/.test(path);
}

export interface DriftOptions {
  /**
   * By the path of a named list (`a.b[name].env`): the item names that only the applier writes in it, or `*`:
   * every item of the list is the applier's.
   */
  ownedNames?: Readonly<Record<string, readonly string[] | '*'>>;
}

function walk(desired: Json, observed: Json, path: string, out: string[], opts: DriftOptions): void {
  if (Array.isArray(desired)) {
    // The API server stores an empty list as none (omitempty): no list holds what an empty one says.
    if (observed === undefined && desired.length === 0) return;
    if (!Array.isArray(observed)) {
      out.push(path);
      return;
    }
    const owned = opts.ownedNames?.[path];
    if (owned) {
      for (const o of observed) {
        if (!isObject(o) || typeof o.name !== 'string' || (owned !== '*' && !owned.includes(o.name))) continue;
        if (!desired.some((d) => isObject(d) && d.name === o.name)) out.push(`${path}[${o.name}]`);
      }
    }
    if (isNamedList(desired)) {
      for (const item of desired as Array<Record<string, Json>>) {
        const match = observed.find((o) => isObject(o) && o.name === item.name);
        if (match === undefined) out.push(`${path}[${String(item.name)}]`);
        else walk(item, match, `${path}[${String(item.name)}]`, out, opts);
      }
      return;
    }
    if (desired.length !== observed.length) {
      out.push(path);
      return;
    }
    desired.forEach((d, i) => walk(d, observed[i], `${path}[${i}]`, out, opts));
    return;
  }
  if (isObject(desired)) {
    if (!isObject(observed)) {
      out.push(path);
      return;
    }
    for (const [k, v] of Object.entries(desired)) {
      if (v === undefined) continue;
      walk(v, observed[k], path ? `${path}.${k}` : k, out, opts);
    }
    return;
  }
  if (desired === observed) return;
  // The API server leaves empty strings out (omitempty): an env var whose value is "" comes back without one.
  if (desired === '' && observed === undefined) return;
  if (typeof desired === 'string' && typeof observed === 'string' && underResources(path)) {
    const a = quantityValue(desired);
    const b = quantityValue(observed);
    if (a !== undefined && b !== undefined && Math.abs(a - b) <= Math.abs(a) * 1e-9) return;
  }
  out.push(path);
}

/** The paths where `observed` does not hold what `desired` says; empty when no apply is needed. */
export function driftPaths(desired: Json, observed: Json, opts: DriftOptions = {}): string[] {
  const out: string[] = [];
  walk(desired, observed, '', out, opts);
  return out;
}
