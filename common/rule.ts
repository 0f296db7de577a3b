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

const operand: z.ZodType<Operand> = z.lazy(() =>
  z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(operand)]),
);

export const matchTypeSchema = z.enum(MATCH_TYPES);
export const matchOperatorSchema = z.enum(MATCH_OPERATORS);

export const ruleSchema: z.ZodType<Rule> = z.lazy(() =>
  z.discriminatedUnion('rule', [
    z.strictObject({ rule: z.literal('allow') }),
    z.strictObject({ rule: z.literal('deny') }),
    z.strictObject({ rule: z.literal('authenticated') }),
    z.strictObject({
      rule: z.literal('match'),
      type: matchTypeSchema,
      eval: matchOperatorSchema,
      f1: operand,
      f2: operand,
    }),
    z.strictObject({ rule: z.literal('and'), clauses: z.array(ruleSchema).min(1) }),
    z.strictObject({ rule: z.literal('or'), clauses: z.array(ruleSchema).min(1) }),
    z.strictObject({
      rule: z.literal('func'),
      service: z.string().min(1),
      func: z.string().min(1),
      namespace: z.string().min(1).optional(),
    }),
  ]),
);
