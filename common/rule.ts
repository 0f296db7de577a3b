/**
 * The rule language (Space Cloud's, without its defects): the shape of a rule as written in a manifest.
 * Compilation and evaluation live in the gateway; this module only says what a well-formed rule is.
 */
import { z } from 'zod';

/** The kinds of rule, the value of a rule's `rule` field. */
export const RULE_KINDS = ['allow', 'deny', 'authenticated', 'match', 'and', 'or', 'func'] as const;
/** The kinds that combine other rules (in `clauses`). */
export const LOGIC_RULE_KINDS = ['and', 'or'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
export const MATCH_TYPES = ['string', 'number', 'bool', 'date'] as const;
export const MATCH_OPERATORS = ['==', '!=', '<', '<=', '>', '>=', 'in', 'notIn'] as const;
export type MatchType = (typeof MATCH_TYPES)[number];
export type MatchOperator = (typeof MATCH_OPERATORS)[number];

/** The roots of `args.<root>` variables: the verified JWT's claims, the call's params, the calling function. */
export const ARG_ROOTS = ['auth', 'params', 'caller'] as const;
export type ArgRoot = (typeof ARG_ROOTS)[number];
/** The functions of `utils.<function>(...)`. */
export const UTIL_FUNCTIONS = ['exists', 'now'] as const;

/** A literal or a variable (`args.auth.sub`, `args.params.id`, `args.caller`, `utils.exists(args.params.x)`, `utils.now()`). */
export type Operand = string | number | boolean | null | Operand[];

export type Rule =
  | { rule: 'allow' }
  | { rule: 'deny' }
  | { rule: 'authenticated' }
  | { rule: 'match'; type: MatchType; eval: MatchOperator; f1: Operand; f2: Operand }
  | { rule: 'and' | 'or'; clauses: Rule[] }
  | { rule: 'func'; service: string; func: string; namespace?: string };

/** A value as a message quotes it: JSON, cut at `max` characters. */
export function quote(value: unknown, max = 80): string {
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

const fields = (keys: readonly string[]): string => keys.map((k) => `"${k}"`).join(', ');

/**
 * What is wrong with the shape of a rule, and how to fix it: one wording for the manifest schema below
 * (`fnmesh validate`, `fnmesh local`, the gateway's rule sources) and the gateway's rule compiler. Each takes
 * the value that was given (undefined when the field is missing).
 */
export const RULE_MESSAGES = {
  notARule: (value: unknown): string => `a rule must be an object such as {"rule": "allow"}, got ${quote(value)}`,
  kind: (value: unknown): string =>
    value === undefined
      ? `a rule needs "rule", one of ${RULE_KINDS.join(', ')}`
      : `${quote(value)} is not a rule type; use one of ${RULE_KINDS.join(', ')}`,
  clauses: (kind: string): string =>
    `"${kind}" needs a non-empty list of rules in "clauses", e.g. [{"rule": "authenticated"}]`,
  matchType: (value: unknown): string =>
    value === undefined
      ? `a match rule needs "type", one of ${MATCH_TYPES.join(', ')}`
      : `${quote(value)} is not a match type; use one of ${MATCH_TYPES.join(', ')}`,
  operator: (value: unknown): string =>
    value === undefined
      ? `a match rule needs "eval", one of ${MATCH_OPERATORS.join(' ')}`
      : `${quote(value)} is not an operator; use one of ${MATCH_OPERATORS.join(' ')}`,
  operand: (value: unknown): string =>
    value === undefined
      ? 'a match rule needs both operands, f1 and f2, e.g. {"rule": "match", "type": "string", "eval": "==", "f1": "args.auth.sub", "f2": "root"}'
      : `${quote(value)} is not an operand; use a string, a number, true or false, a variable such as "args.auth.sub", or for "in"/"notIn" a list of those`,
  funcTarget: (value: unknown): string =>
    value === undefined
      ? 'a func rule needs "service" and "func", e.g. {"rule": "func", "service": "authz", "func": "canGreet"}'
      : `${quote(value)} is not a name; write the name as a non-empty string`,
  unknownFields: (kind: string, given: readonly string[], allowed: readonly string[]): string =>
    `${fields(given)} ${given.length === 1 ? 'is not a field' : 'are not fields'} of ${/^[aeiou]/.test(kind) ? 'an' : 'a'} "${kind}" rule; it takes ${fields(allowed)}`,
} as const;

/** zod's error option, for a schema whose every refusal `message` explains from the value given. */
const explained = (message: (value: unknown) => string) => ({
  error: (issue: { input?: unknown }) => message(issue.input),
});

/** A rule of one kind: unknown fields are refused with the fields the kind takes. */
function ruleOf<Kind extends RuleKind, Shape extends z.ZodRawShape>(kind: Kind, shape: Shape) {
  const allowed = ['rule', ...Object.keys(shape)];
  return z.strictObject(
    { rule: z.literal(kind), ...shape },
    {
      error: (issue) =>
        issue.code === 'unrecognized_keys' ? RULE_MESSAGES.unknownFields(kind, issue.keys, allowed) : undefined,
    },
  );
}

const operand: z.ZodType<Operand> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(operand)], explained(RULE_MESSAGES.operand)),
);
const clauses = (kind: 'and' | 'or') =>
  z
    .array(
      ruleSchema,
      explained(() => RULE_MESSAGES.clauses(kind)),
    )
    .min(1, RULE_MESSAGES.clauses(kind));
const funcTarget = z.string(explained(RULE_MESSAGES.funcTarget)).min(1, explained(RULE_MESSAGES.funcTarget));

export const matchTypeSchema = z.enum(MATCH_TYPES, explained(RULE_MESSAGES.matchType));
export const matchOperatorSchema = z.enum(MATCH_OPERATORS, explained(RULE_MESSAGES.operator));

export const ruleSchema: z.ZodType<Rule> = z.lazy(() =>
  z.discriminatedUnion(
    'rule',
    [
      ruleOf('allow', {}),
      ruleOf('deny', {}),
      ruleOf('authenticated', {}),
      ruleOf('match', { type: matchTypeSchema, eval: matchOperatorSchema, f1: operand, f2: operand }),
      ruleOf('and', { clauses: clauses('and') }),
      ruleOf('or', { clauses: clauses('or') }),
      ruleOf('func', { service: funcTarget, func: funcTarget, namespace: funcTarget.optional() }),
    ],
    {
      // zod types this issue as invalid_union only, but a value that is not an object is an invalid_type
      error: (issue) =>
        (issue.code as string) === 'invalid_type'
          ? RULE_MESSAGES.notARule(issue.input)
          : RULE_MESSAGES.kind((issue.input as { rule?: unknown } | undefined)?.rule),
    },
  ),
);
