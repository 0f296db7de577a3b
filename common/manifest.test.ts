/**
 * The manifest schema's messages: a rule the schema refuses names the function by its name, the field by a
 * path a person can follow (into and/or clauses), and the value that was given, with the fix.
 */
import { ConfigError } from './errors';
import { fieldPath, parseFunctionService } from './manifest';
import { ACCEPTED_SPECS, REFUSED_SPECS, functionService } from '../test/helpers/refused-manifests';

const manifest = (functions: unknown[]): unknown => ({
  apiVersion: 'fnmesh.io/v1alpha1',
  kind: 'FunctionService',
  metadata: { name: 'shop' },
  spec: { functions },
});

/** The message for a service whose function "admin" (the second function) has `rule`. */
function refusal(rule: unknown): string {
  try {
    parseFunctionService(
      manifest([
        { name: 'fine', rule: { rule: 'allow' } },
        { name: 'admin', rule },
      ]),
      'shop.yaml',
    );
  } catch (err) {
    return (err as Error).message.replace('shop.yaml: invalid FunctionService: ', '');
  }
  throw new Error(`the rule ${JSON.stringify(rule)} was accepted`);
}

const KINDS = 'allow, deny, authenticated, match, and, or, func';
const OPERATORS = '== != < <= > >= in notIn';
const match = (fields: Record<string, unknown>): Record<string, unknown> => ({
  rule: 'match',
  type: 'string',
  eval: '==',
  f1: 'args.auth.sub',
  f2: 'root',
  ...fields,
});

describe('a rule the schema refuses', () => {
  test.each<[string, unknown, string]>([
    [
      'an unknown rule type',
      { rule: 'allw' },
      `spec.functions[admin].rule.rule: "allw" is not a rule type; use one of ${KINDS}`,
    ],
    ['no rule type', {}, `spec.functions[admin].rule.rule: a rule needs "rule", one of ${KINDS}`],
    [
      'a rule that is not an object',
      'allow',
      'spec.functions[admin].rule: a rule must be an object such as {"rule": "allow"}, got "allow"',
    ],
    [
      'a bad type',
      match({ type: 'integer' }),
      'spec.functions[admin].rule.type: "integer" is not a match type; use one of string, number, bool, date',
    ],
    [
      'no type',
      match({ type: undefined }),
      'spec.functions[admin].rule.type: a match rule needs "type", one of string, number, bool, date',
    ],
    [
      'a bad eval',
      match({ eval: '=' }),
      `spec.functions[admin].rule.eval: "=" is not an operator; use one of ${OPERATORS}`,
    ],
    [
      'no eval',
      match({ eval: undefined }),
      `spec.functions[admin].rule.eval: a match rule needs "eval", one of ${OPERATORS}`,
    ],
    [
      'no f2',
      match({ f2: undefined }),
      'spec.functions[admin].rule.f2: a match rule needs both operands, f1 and f2, e.g. {"rule": "match", "type": "string", "eval": "==", "f1": "args.auth.sub", "f2": "root"}',
    ],
    [
      'an object as an operand',
      match({ f1: { sub: 1 } }),
      'spec.functions[admin].rule.f1: {"sub":1} is not an operand; use a string, a number, true or false, a variable such as "args.auth.sub", or for "in"/"notIn" a list of those',
    ],
    [
      'and without clauses',
      { rule: 'and' },
      'spec.functions[admin].rule.clauses: "and" needs a non-empty list of rules in "clauses", e.g. [{"rule": "authenticated"}]',
    ],
    [
      'or with no clauses',
      { rule: 'or', clauses: [] },
      'spec.functions[admin].rule.clauses: "or" needs a non-empty list of rules in "clauses", e.g. [{"rule": "authenticated"}]',
    ],
    [
      'clauses that are not a list',
      { rule: 'or', clauses: { rule: 'allow' } },
      'spec.functions[admin].rule.clauses: "or" needs a non-empty list of rules in "clauses", e.g. [{"rule": "authenticated"}]',
    ],
    [
      'a field of another kind',
      { rule: 'allow', clauses: [{ rule: 'deny' }] },
      'spec.functions[admin].rule: "clauses" is not a field of an "allow" rule; it takes "rule"',
    ],
    [
      'fields of another kind',
      { rule: 'func', service: 'authz', func: 'can', type: 'string', f1: 'x' },
      'spec.functions[admin].rule: "type", "f1" are not fields of a "func" rule; it takes "rule", "service", "func", "namespace"',
    ],
    [
      'a func rule without func',
      { rule: 'func', service: 'authz' },
      'spec.functions[admin].rule.func: a func rule needs "service" and "func", e.g. {"rule": "func", "service": "authz", "func": "canGreet"}',
    ],
    [
      'a func rule with an empty service',
      { rule: 'func', service: '', func: 'can' },
      'spec.functions[admin].rule.service: "" is not a name; write the name as a non-empty string',
    ],
  ])('%s', (_name, rule, message) => {
    expect(refusal(rule)).toBe(message);
  });

  test('deep inside and/or: the path follows the clauses', () => {
    const rule = {
      rule: 'or',
      clauses: [{ rule: 'allow' }, { rule: 'and', clauses: [{ rule: 'deny' }, match({ eval: 'eq' })] }],
    };
    expect(refusal(rule)).toBe(
      `spec.functions[admin].rule.clauses[1].clauses[1].eval: "eq" is not an operator; use one of ${OPERATORS}`,
    );
    expect(refusal({ rule: 'and', clauses: [{ rule: 'or' }] })).toBe(
      'spec.functions[admin].rule.clauses[0].clauses: "or" needs a non-empty list of rules in "clauses", e.g. [{"rule": "authenticated"}]',
    );
    expect(refusal({ rule: 'and', clauses: [{ rule: 'allow' }, { rule: 'maybe' }] })).toBe(
      `spec.functions[admin].rule.clauses[1].rule: "maybe" is not a rule type; use one of ${KINDS}`,
    );
  });

  test('every problem is listed, each under its own function', () => {
    expect(() =>
      parseFunctionService(
        manifest([
          { name: 'a', rule: { rule: 'nope' } },
          { name: 'b', rule: match({ type: 'text' }) },
        ]),
        'shop.yaml',
      ),
    ).toThrow(
      `shop.yaml: invalid FunctionService: spec.functions[a].rule.rule: "nope" is not a rule type; use one of ${KINDS}; ` +
        'spec.functions[b].rule.type: "text" is not a match type; use one of string, number, bool, date',
    );
  });
});

describe('fieldPath', () => {
  const value = {
    spec: {
      functions: [{ name: 'a' }, { name: 'bad.name' }, { name: 'twice' }, { name: 'twice' }, {}],
      container: { env: [{ name: 'X' }] },
    },
  };
  test.each<[(string | number)[], string]>([
    [['spec', 'functions', 0, 'rule', 'clauses', 2, 'f1'], 'spec.functions[a].rule.clauses[2].f1'],
    [['spec', 'functions', 1, 'name'], 'spec.functions[1].name'], // not a valid name: by index
    [['spec', 'functions', 3, 'timeoutMs'], 'spec.functions[3].timeoutMs'], // listed twice: by index
    [['spec', 'functions', 4, 'name'], 'spec.functions[4].name'], // no name
    [['spec', 'functions', 9], 'spec.functions[9]'], // beyond the list
    [['spec', 'container', 'env', 0, 'name'], 'spec.container.env[0].name'], // only functions go by name
    [['spec', 'replicas'], 'spec.replicas'],
    [[], '(document)'],
  ])('%j → %s', (path, expected) => {
    expect(fieldPath(path, value)).toBe(expected);
  });
});

describe('failure settings that contradict each other (the same specs the API server refuses, test/crd.test.ts)', () => {
  const parse = (spec: Record<string, unknown>) => parseFunctionService(functionService(spec), 'shop.yaml');

  test.each(REFUSED_SPECS.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(() => parse(c.spec)).toThrow(new ConfigError(`shop.yaml: invalid FunctionService: ${c.zod}`));
  });

  test.each(ACCEPTED_SPECS.map((c) => [c.name, c] as const))('accepts %s', (_name, c) => {
    expect(() => parse(c.spec)).not.toThrow();
  });

  test('a problem of the service is reported once, not again for each function that inherits it', () => {
    const spec = { retry: { perTryTimeoutMs: 500 }, functions: [{ name: 'a' }, { name: 'b', timeoutMs: 9000 }] };
    expect(() => parse(spec)).toThrow(
      new ConfigError(
        'shop.yaml: invalid FunctionService: spec.retry.perTryTimeoutMs: needs "timeout" in retryOn, and no retryOn is ' +
          'given: an attempt cut at its per-try timeout may have run, so without "timeout" it fails the call instead of ' +
          'being retried; add "timeout" to retryOn, or remove perTryTimeoutMs',
      ),
    );
  });

  test('every problem is listed', () => {
    const spec = {
      outlierDetection: { baseEjectionMs: 10, maxEjectionMs: 5 },
      functions: [{ name: 'a', retry: { perTryTimeoutMs: 20_000, retryOn: ['timeout'] } }],
    };
    expect(() => parse(spec)).toThrow(
      "shop.yaml: invalid FunctionService: spec.functions[a].retry.perTryTimeoutMs: 20000 is more than the function's timeoutMs, 10000 (spec.timeoutMs); " +
        "make perTryTimeoutMs at most timeoutMs (one attempt cannot outlast the call's deadline); " +
        'spec.outlierDetection.baseEjectionMs: 10 is more than maxEjectionMs, 5; make baseEjectionMs at most maxEjectionMs ' +
        '(each ejection in a row doubles from baseEjectionMs up to maxEjectionMs)',
    );
  });

  test.each<[unknown]>([['sometimes'], [499], [600], ['503'], [502.5]])('a retryOn entry %j', (entry) => {
    expect(() => parse({ functions: [{ name: 'f', retry: { retryOn: ['reset', entry] } }] })).toThrow(
      `shop.yaml: invalid FunctionService: spec.functions[f].retry.retryOn[1]: ${JSON.stringify(entry)} is not a failure ` +
        'to retry on; use "reset", "timeout", "5xx" or one status from 500 to 599',
    );
  });

  test('a maxMs below the default initialMs is reported at maxMs', () => {
    expect(() => parse({ retry: { backoff: { maxMs: 5 } } })).toThrow(
      'spec.retry.backoff.maxMs: 5 is less than initialMs, 10 (the default); make maxMs at least initialMs',
    );
  });
});
