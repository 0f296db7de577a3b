/**
 * The FunctionService CRD (crds/fnmesh.io_functionservices.yaml) against its generator (crds/generate.ts), against the manifest
 * schema of common/manifest.ts, and (for the mistyped-variable pattern) against the gateway's operand parser.
 * The real proof that the API server takes and refuses what it should is test/crd.test.ts.
 */
import { readFileSync } from 'node:fs';
import { listManifestFiles } from '../common/manifest-files';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import * as generator from './generate';
import type { Schema } from './generate';
import { parseOperand } from '../gateway/rules';
import { functionServiceSpecSchema, parseManifests } from '../common/manifest';
import { DNS_LABEL, FUNCTION_NAME } from '../common/names';
import { MATCH_OPERATORS, MATCH_TYPES } from '../common/rule';
import {
  DEFAULT_CIRCUIT_BREAKER,
  DEFAULT_OUTLIER_DETECTION,
  DEFAULT_QUEUE_LENGTH,
  DEFAULT_RETRY,
} from '../common/resilience';

const repo = path.resolve(__dirname, '..');
const crdText = readFileSync(path.join(__dirname, generator.CRD_FILE), 'utf8');
const docs = parseAllDocuments(crdText);
const crd = docs[0]!.toJS() as {
  kind: string;
  spec: { versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
};
const root = crd.spec.versions[0]!.schema.openAPIV3Schema;
const spec = root.properties!.spec!;
const rule0 = spec.properties!.functions!.items!.properties!.rule!;

describe('the committed CRD', () => {
  test("is written to crds/ and to the chart's crds/, byte for byte what the generator renders", () => {
    expect(generator.CRD_OUTPUTS).toEqual([`crds/${generator.CRD_FILE}`, `charts/fnmesh/crds/${generator.CRD_FILE}`]);
    const rendered = Buffer.from(generator.render(), 'utf8');
    for (const file of generator.CRD_OUTPUTS) expect(readFileSync(path.join(repo, file)).equals(rendered)).toBe(true);
  });

  test('is one CustomResourceDefinition document', () => {
    expect(docs).toHaveLength(1);
    expect(docs[0]!.errors).toEqual([]);
    expect(crd.kind).toBe('CustomResourceDefinition');
  });

  test('is exactly what crds/generate.ts generates (run `npm run generate` after changing it)', () => {
    expect(crdText === generator.render()).toBe(true);
  });

  test('fits in the last-applied-configuration annotation of a client-side `kubectl apply` (256 KiB)', () => {
    // The annotation holds the object as JSON; stay well under the API server's 262144-byte limit.
    expect(JSON.stringify(crd).length).toBeLessThan(200_000);
  });

  test('describes every field, at every level of rule nesting (kubectl explain shows these)', () => {
    const undocumented: string[] = [];
    const walk = (s: Schema, at: string): void => {
      if (at !== '' && at !== '.metadata' && !s.description) undocumented.push(at || '(root)');
      for (const [name, p] of Object.entries(s.properties ?? {})) walk(p, `${at}.${name}`);
      if (s.items) walk(s.items, `${at}[]`);
      if (s.additionalProperties && typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}{}`);
    };
    walk(root, '');
    expect(root.description).toBeTruthy();
    expect(undocumented).toEqual([]);
  });

  test('uses the name patterns of common/names.ts', () => {
    const fn = spec.properties!.functions!.items!.properties!.name!;
    expect(fn.pattern).toBe(FUNCTION_NAME.source);
    expect(rule0.properties!.service!.pattern).toBe(DNS_LABEL.source);
    expect(rule0.properties!.namespace!.pattern).toBe(DNS_LABEL.source);
    expect(rule0.properties!.func!.pattern).toBe(FUNCTION_NAME.source);
    // The CEL rule on metadata.name says the same as DNS_LABEL (with its 63-character bound written apart).
    const nameRule = root['x-kubernetes-validations']![0]!.rule;
    expect(nameRule).toContain("matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')");
    expect(nameRule).toContain('size(self.metadata.name) <= 63');
  });

  test('CEL messages quote only bounded fields and keep a plain message for when they cannot be evaluated', () => {
    const quoted: string[] = [];
    const walk = (s: Schema, at: string): void => {
      for (const v of s['x-kubernetes-validations'] ?? []) {
        if (!v.messageExpression) continue;
        expect(v.message).toBeTruthy();
        for (const [, field] of v.messageExpression.matchAll(/(?<!has\()self\.(\w+)/g)) {
          const f = field === 'metadata' ? s.properties!.metadata!.properties!.name! : s.properties![field!]!;
          quoted.push(`${at}.${field}`);
          // The API server estimates a message's CEL cost from the quoted string's maxLength (a list's maxItems).
          if (f.type !== 'string' && f.type !== 'array') continue; // an object or a number read, not quoted
          const bound = f.type === 'array' ? f.maxItems : f.maxLength;
          expect([`${at}.${field}`, bound]).toEqual([`${at}.${field}`, expect.any(Number)]);
        }
      }
      for (const [name, p] of Object.entries(s.properties ?? {})) walk(p, `${at}.${name}`);
      if (s.items) walk(s.items, `${at}[]`);
    };
    walk(root, '');
    expect(quoted).toEqual(expect.arrayContaining(['.metadata', '.spec.functions[].rule.rule', '.spec.functions']));
  });

  test('unrolls rules to the advertised depth; the deepest level takes leaf rules only', () => {
    let level = rule0;
    let depth = 0;
    while (level.properties!.clauses) {
      expect(level.properties!.rule!.enum).toEqual(expect.arrayContaining(['and', 'or']));
      expect(level.properties!.clauses.maxItems).toBe(generator.MAX_CLAUSES);
      level = level.properties!.clauses.items!;
      depth++;
    }
    expect(depth).toBe(generator.RULE_NESTING);
    expect(level.properties!.rule!.enum).not.toContain('and');
    expect(level.properties!.rule!.enum).not.toContain('or');
  });
});

// ------------------------------------------------------------------------------------ zod ↔ CRD

describe('leaves from zod', () => {
  test('a number, a string and a list of strings take their bounds, pattern and default from zod', () => {
    expect(generator.fromZod(z.number().int().min(1).max(9).default(3), 'n', { format: 'int32' })).toEqual({
      type: 'integer',
      description: 'n',
      format: 'int32',
      default: 3,
      minimum: 1,
      maximum: 9,
    });
    expect(generator.fromZod(z.string().regex(/^a$/), 's', { maxLength: 1 })).toEqual({
      type: 'string',
      description: 's',
      maxLength: 1,
      pattern: '^a$',
    });
    expect(generator.fromZod(z.array(z.string().min(1)).min(1), 'l', { items: { description: 'i' } })).toEqual({
      type: 'array',
      description: 'l',
      minItems: 1,
      items: { type: 'string', description: 'i', minLength: 1 },
    });
  });

  test('refuses what a leaf of a structural schema cannot hold, and undescribed items', () => {
    expect(() => generator.fromZod(z.strictObject({ a: z.string() }), 'o')).toThrow(
      'zod gives properties, required, additionalProperties for the CRD leaf',
    );
    expect(() => generator.fromZod(z.union([z.string(), z.number()]), 'u')).toThrow('zod gives no single type');
    expect(() => generator.fromZod(z.array(z.string()), 'l')).toThrow('describe the items of the CRD list "l"');
  });
});

type ZodDef = {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  values?: unknown[];
  entries?: Record<string, unknown>;
  defaultValue?: unknown;
  checks?: { _zod: { def: Record<string, unknown> } }[];
  getter?: () => z.ZodType;
};
const def = (s: z.ZodType): ZodDef => (s as unknown as { _zod: { def: ZodDef } })._zod.def;

interface ZodField {
  path: string;
  schema: z.ZodType;
  default?: unknown;
}

/** Every field of a zod object schema, through optional/default wrappers, arrays and nested objects. */
function zodFields(schema: z.ZodType, at: string, out: ZodField[], dflt?: unknown): void {
  const d = def(schema);
  switch (d.type) {
    case 'optional':
      return zodFields(d.innerType!, at, out, dflt);
    case 'default':
      return zodFields(d.innerType!, at, out, d.defaultValue);
    case 'object':
      if (at) out.push({ path: at, schema, default: dflt });
      for (const [k, v] of Object.entries(d.shape!)) zodFields(v, `${at}.${k}`, out);
      return;
    case 'array':
      out.push({ path: at, schema, default: dflt });
      if (def(d.element!).type === 'object') zodFields(d.element!, `${at}[]`, out);
      return;
    default:
      out.push({ path: at, schema, default: dflt });
  }
}

function crdAt(p: string): Schema | undefined {
  let s: Schema | undefined = spec;
  for (const part of p.split(/(?=[.[])/)) {
    if (!s) return undefined;
    s = part === '[]' ? s.items : s.properties?.[part.slice(1)];
  }
  return s;
}

const checks = (s: z.ZodType): Record<string, unknown>[] => {
  let d = def(s);
  while (d.type === 'optional' || d.type === 'default') d = def(d.innerType!);
  return (d.checks ?? []).map((c) => c._zod.def);
};

describe('the CRD mirrors common/manifest.ts', () => {
  const fields: ZodField[] = [];
  zodFields(functionServiceSpecSchema, '', fields);
  const paths = fields.map((f) => f.path);

  test('the walk found the manifest fields (sanity)', () => {
    expect(paths).toEqual(
      expect.arrayContaining(['.replicas', '.functions[].rule', '.container.env[].name', '.local.cwd']),
    );
  });

  test.each(paths)('spec%s is in the CRD with the same default and bounds', (p) => {
    const field = fields.find((f) => f.path === p)!;
    const s = crdAt(p);
    if (!s) throw new Error(`spec${p} is in common/manifest.ts but not in the CRD: add it to crds/generate.ts`);
    if (field.default !== undefined) expect(s.default).toEqual(field.default);
    else expect(s.default).toBeUndefined();
    const d = def(field.schema);
    for (const c of checks(field.schema)) {
      switch (c.check) {
        case 'greater_than':
          expect(s.minimum).toBe(c.value);
          break;
        case 'less_than':
          expect(s.maximum).toBe(c.value);
          break;
        case 'min_length':
          expect(d.type === 'array' || s.type === 'array' ? s.minItems : s.minLength).toBe(c.minimum);
          break;
        case 'max_length':
          expect(d.type === 'array' || s.type === 'array' ? s.maxItems : s.maxLength).toBe(c.maximum);
          break;
        case 'string_format':
          if (c.format === 'regex') expect(s.pattern).toBe((c.pattern as RegExp).source);
          else if (c.format === 'starts_with') {
            expect(new RegExp(s.pattern!).test(`${String(c.prefix)}x`)).toBe(true);
            expect(new RegExp(s.pattern!).test(`x${String(c.prefix)}`)).toBe(false);
          } else throw new Error(`spec${p}: no CRD equivalent checked for string format ${String(c.format)}`);
          break;
        case 'number_format':
          expect(s.type).toBe('integer');
          break;
        default:
          throw new Error(`spec${p}: no CRD equivalent checked for the zod check ${String(c.check)}`);
      }
    }
    // Array items carry their own checks (local.command items are non-empty strings).
    if (d.type === 'array' || (d.innerType && def(d.innerType).type === 'array')) {
      const el = def(d.type === 'array' ? field.schema : d.innerType!).element!;
      for (const c of checks(el)) if (c.check === 'min_length') expect(s.items!.minLength).toBe(c.minimum);
    }
  });

  test('rules have the fields, kinds, types and operators of common/rule.ts', () => {
    expect(rule0.properties!.type!.enum).toEqual([...MATCH_TYPES]);
    expect(rule0.properties!.eval!.enum).toEqual([...MATCH_OPERATORS]);
    const kinds = new Set<string>();
    const keys = new Set<string>();
    const ruleUnion = def(fields.find((f) => f.path === '.functions[].rule')!.schema);
    let u: ZodDef = ruleUnion;
    while (u.type !== 'union') u = u.type === 'lazy' ? def(u.getter!()) : def(u.innerType!);
    for (const option of u.options!) {
      for (const [k, v] of Object.entries(def(option).shape!)) {
        keys.add(k);
        if (k === 'rule') kinds.add(String(def(v).values![0]));
      }
    }
    expect(Object.keys(rule0.properties!).sort()).toEqual([...keys].sort());
    expect([...(rule0.properties!.rule!.enum as string[])].sort()).toEqual([...kinds].sort());
  });
});

// ------------------------------------------------------------------------------------ examples

/**
 * A small OpenAPI validator for the subset the CRD uses (no CEL): enough to show the examples fit the
 * structural schema (unknown fields, types, enums, patterns, bounds, anyOf/not). The API server test is the
 * real check.
 */
function validate(s: Schema, v: unknown, at: string, errors: string[]): boolean {
  const before = errors.length;
  const isStr = typeof v === 'string';
  if (s['x-kubernetes-int-or-string']) {
    if (!(isStr || Number.isInteger(v))) errors.push(`${at}: not an int or string`);
  } else if (s.type) {
    const ok =
      (s.type === 'object' && v !== null && typeof v === 'object' && !Array.isArray(v)) ||
      (s.type === 'array' && Array.isArray(v)) ||
      (s.type === 'string' && isStr) ||
      (s.type === 'integer' && Number.isInteger(v)) ||
      (s.type === 'boolean' && typeof v === 'boolean');
    if (!ok) {
      errors.push(`${at}: not of type ${s.type}`);
      return false;
    }
  }
  if (s.enum && !s.enum.includes(v)) errors.push(`${at}: ${JSON.stringify(v)} is not one of ${JSON.stringify(s.enum)}`);
  if (isStr && s.pattern && !new RegExp(s.pattern).test(v)) errors.push(`${at}: does not match ${s.pattern}`);
  if (isStr && s.minLength !== undefined && v.length < s.minLength) errors.push(`${at}: too short`);
  if (isStr && s.maxLength !== undefined && v.length > s.maxLength) errors.push(`${at}: too long`);
  if (typeof v === 'number' && s.minimum !== undefined && v < s.minimum) errors.push(`${at}: below ${s.minimum}`);
  if (typeof v === 'number' && s.maximum !== undefined && v > s.maximum) errors.push(`${at}: above ${s.maximum}`);
  if (s.anyOf && !s.anyOf.some((b) => validate(b, v, at, []))) errors.push(`${at}: matches no anyOf branch`);
  if (s.allOf && !s.allOf.every((b) => validate(b, v, at, []))) errors.push(`${at}: fails an allOf branch`);
  if (s.not && validate(s.not, v, at, [])) errors.push(`${at}: matches the "not" schema`);
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) errors.push(`${at}: fewer than ${s.minItems} items`);
    if (s.maxItems !== undefined && v.length > s.maxItems) errors.push(`${at}: more than ${s.maxItems} items`);
    if (s.items) v.forEach((item, i) => validate(s.items!, item, `${at}[${i}]`, errors));
  } else if (v !== null && typeof v === 'object') {
    const obj = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in obj)) errors.push(`${at}.${r}: required`);
    if (s.properties || s.additionalProperties) {
      for (const [k, val] of Object.entries(obj)) {
        const p =
          s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : undefined);
        if (p) validate(p, val, `${at}.${k}`, errors);
        else if (s.type && !s['x-kubernetes-preserve-unknown-fields']) errors.push(`${at}.${k}: unknown field`);
      }
    }
  }
  return errors.length === before;
}
const valid = (s: Schema, v: unknown): string[] => {
  const errors: string[] = [];
  validate(s, v, '', errors);
  return errors;
};

describe('the examples', () => {
  const files = listManifestFiles([path.join(repo, 'examples')]).map((f) => path.relative(repo, f));

  test('exist', () => {
    expect(files.length).toBeGreaterThanOrEqual(3);
  });

  test.each(files)('%s fits the CRD schema', (file) => {
    const text = readFileSync(path.join(repo, file), 'utf8');
    parseManifests(text, file); // and the manifest schema
    for (const doc of parseAllDocuments(text)) {
      const obj = doc.toJS() as { metadata: unknown };
      const { metadata: _metadata, ...rest } = obj;
      expect(valid(root, rest)).toEqual([]);
    }
  });

  test('the validator itself refuses what it should (sanity)', () => {
    expect(valid(spec, { replica: 1 })).toEqual(['.replica: unknown field']);
    expect(valid(spec, { replicas: -1 })).toEqual(['.replicas: below 0']);
    expect(valid(rule0, { rule: 'match', type: 'string', eval: '==', f1: 'arg.auth.sub', f2: 'x' })).toEqual([
      '.f1: matches no anyOf branch',
    ]);
    expect(valid(rule0, { rule: 'match', type: 'string', eval: '==', f1: 'args.auth.sub' })).toEqual([
      ': fails an allOf branch',
    ]);
    expect(valid(rule0, { rule: 'allow', f1: 'x' })).toEqual([': fails an allOf branch']);
    expect(valid(rule0, { rule: 'match', type: 'number', eval: '<', f1: 'args.params.n', f2: 3 })).toEqual([]);
    expect(
      valid(rule0, { rule: 'match', type: 'bool', eval: '==', f1: 'utils.exists(args.x.y)', f2: true }),
    ).toHaveLength(1);
  });
});

// ------------------------------------------------------------------------------------ mistyped variables

describe('the mistyped-variable pattern agrees with the gateway', () => {
  const typo = new RegExp(generator.typoPattern());
  const gatewayRefuses = (s: string): boolean => {
    try {
      parseOperand(s);
      return false;
    } catch {
      return true;
    }
  };

  const refused = [
    'arg.auth.sub',
    'args.auht.sub',
    'Args.auth.sub',
    'ARGS.params.id',
    ' args.auth.sub',
    'args .auth.sub',
    'args',
    'args.',
    'args.auth.',
    'args.auth..x',
    'args.auth. x',
    'args.caller.name',
    'args.callr',
    'ags.params.id',
    'agrs.auth.sub',
    'argss.auth.sub',
    'utils.exist(args.auth.sub)',
    'utils.exists(arg.auth.sub)',
    'utils.exists(args.auht.sub)',
    'utils.exists(args)',
    'utils.exists(args.auth.x',
    'utils.exists',
    'utils.now',
    'utils.now(x)',
    'utils.nw()',
    'util.now()',
    'utls.now()',
    'Utils.now()',
    'utils(args.auth.sub)',
  ];
  const accepted = [
    'args.auth.sub',
    'args.auth',
    'args.params',
    'args.params.items.0.id',
    'args.params.a b.c',
    'args.caller',
    'utils.now()',
    'utils.exists(args.auth.role)',
    'utils.exists(args.caller)',
    'admin',
    'default/greeter',
    'art.history',
    'arguments.x',
    'hello world',
    '',
    '2025-01-31T12:00:00Z',
    'a.b.c',
    'args are fine',
    'utilities.x',
  ];

  test.each(refused)('refuses %j (and so does the gateway)', (s) => {
    expect(gatewayRefuses(s)).toBe(true);
    expect(typo.test(s)).toBe(true);
  });

  test.each(accepted)('accepts %j', (s) => {
    expect(typo.test(s)).toBe(false);
  });

  test.each(generator.NEAR_MISSES)('refuses the near miss %s.auth.sub, as the gateway does', (head) => {
    expect(gatewayRefuses(`${head}.auth.sub`)).toBe(true);
    expect(typo.test(`${head}.auth.sub`)).toBe(true);
  });

  test('never refuses what the gateway accepts (random strings near the variable syntax)', () => {
    const pieces = [
      'args',
      'utils',
      'arg',
      'util',
      '.',
      '(',
      ')',
      'auth',
      'params',
      'caller',
      'now',
      'exists',
      ' ',
      'x',
      'A',
      '0',
      '_',
      '',
    ];
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const wrong: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      let s = '';
      const n = 1 + rnd(7);
      for (let k = 0; k < n; k++) s += pieces[rnd(pieces.length)];
      if (typo.test(s) && !gatewayRefuses(s)) wrong.push(s);
    }
    expect(wrong).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------ the README

describe("the README's FunctionService table", () => {
  const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
  /** `spec.x` → its default as the table writes it (rows may name several fields with as many defaults). */
  const rows = new Map<string, string>();
  for (const line of readme.split('\n')) {
    if (!line.startsWith('| `spec.')) continue;
    const cells = line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const fields = [...cells[0]!.matchAll(/`(spec\.[^`]+)`/g)].map((m) => m[1]!);
    const defaults = cells[1]!.split(', ');
    fields.forEach((f, i) => rows.set(f, fields.length === defaults.length ? defaults[i]! : cells[1]!));
  }
  const expected: [string, unknown][] = [
    ['spec.replicas', functionServiceSpecSchema.shape.replicas.parse(undefined)],
    ['spec.port', functionServiceSpecSchema.shape.port.parse(undefined)],
    ['spec.concurrency', functionServiceSpecSchema.shape.concurrency.parse(undefined)],
    ['spec.queueLength', DEFAULT_QUEUE_LENGTH],
    ['spec.timeoutMs', functionServiceSpecSchema.shape.timeoutMs.parse(undefined)],
    ['spec.retry.attempts', DEFAULT_RETRY.attempts],
    ['spec.retry.backoff.initialMs', DEFAULT_RETRY.backoff.initialMs],
    ['spec.retry.backoff.maxMs', DEFAULT_RETRY.backoff.maxMs],
    ...Object.entries(DEFAULT_OUTLIER_DETECTION).map(([k, v]): [string, unknown] => [`spec.outlierDetection.${k}`, v]),
    ...Object.entries(DEFAULT_CIRCUIT_BREAKER).map(([k, v]): [string, unknown] => [`spec.circuitBreaker.${k}`, v]),
  ];

  test.each(expected)('lists %s with its default, %p', (field, value) => {
    expect([field, rows.get(field)?.replace(/`/g, '')]).toEqual([field, String(value)]);
  });

  test('lists every field of the manifest that a user sets (container and local as a whole)', () => {
    const fields: ZodField[] = [];
    zodFields(functionServiceSpecSchema, '', fields);
    const missing = fields
      .map((f) => `spec${f.path}`)
      .filter((p) => !/^spec\.(container|local)\.|^spec\.functions\[\]\.retry\./.test(p))
      .filter((p) => ![...rows.keys()].some((r) => r === p || r.startsWith(`${p}.`) || r.startsWith(`${p}[]`)));
    expect(missing).toEqual([]);
  });
});
