/**
 * The rule compiler: turns a rule (common/rule.ts) into closures ONCE per configuration change; a call
 * only runs those closures (no JSON walking, no path parsing, no literal coercion per call).
 *
 * Decisions (the places where Space Cloud's language was loose or defective):
 *
 * - Variables. A string operand that begins with `args.` or `utils.` is ALWAYS a variable; there is no
 *   literal escape. Roots: `args.auth` (verified JWT claims), `args.params` (call params), `args.caller`
 *   ("namespace/service" of an internal call; a string, so it has no fields). Paths are dotted; a numeric
 *   segment indexes an array (`args.params.items.0.id`); on an object it is an ordinary key. Only own
 *   properties are followed (`args.params.constructor` does not resolve). Functions: `utils.exists(<var>)`
 *   (true when the path resolves to a value other than undefined/null; it is a bool, so only `type: bool`)
 *   and `utils.now()` (the current instant; only `type: date`).
 * - Typos are errors, never literals. A string whose first dotted segment is within edit distance 2 of
 *   `args` or `utils` (case-insensitive, transpositions count 1) but is not a valid variable is a
 *   ConfigError with a "did you mean" fix (`arg.auth.id`, `Args.auth.id`, `utils.exist(args.x)`,
 *   `utils.exists(arg.x)`); an unknown root is an error (`args.auht.id` → did you mean args.auth?).
 *   Consequence: a literal such as "art.history" cannot be written (its first segment is 2 edits from
 *   "args"); we accept that over silent literals.
 * - Types are strict, no coercion. `string` compares JS strings; `number` needs finite JSON numbers (a
 *   numeric string, e.g. a JWT claim "42", does NOT match: the match denies saying so); `bool` needs
 *   true/false; `date` accepts ISO-8601 strings (date only = UTC midnight; a date-time MUST carry `Z` or an
 *   offset, since zone-less times are ambiguous), epoch MILLISECONDS numbers, and `utils.now()`, and
 *   compares instants. NB: JWT `exp`/`iat`/`nbf` are epoch SECONDS: compare them with `type: number`.
 *   A literal of the wrong type is a compile-time error (`type: number` with "5" → write 5); a run-time
 *   value of the wrong type denies with a reason.
 * - Operators per type: string == != in notIn; number all; bool == != ; date == != < <= > >= in notIn.
 *   Anything else is a compile-time error naming the allowed operators.
 * - `in`/`notIn`: f2 must be an array literal or a variable (a variable that is not an array at run time
 *   denies). Array literals may mix literals and variables; all-literal lists become a Set at compile
 *   time. Every element is checked with the type; for a variable array, a wrongly typed element denies
 *   (both for in and notIn). Arrays are allowed nowhere else; `null` literals are refused (use
 *   utils.exists).
 * - Missing data never allows: a variable that resolves to undefined/null makes the match deny with a
 *   reason naming it, for every operator including `!=` and `notIn`.
 * - `and`/`or` nest any rule to any depth. Rules are pure except `func`, so order does not matter: the
 *   clauses without a func are evaluated first (in written order), then the func clauses one at a time in
 *   written order; `and` stops at the first deny, `or` at the first allow, so a func is not called when a
 *   sync clause already decided. A rule without func evaluates synchronously (evaluate returns a
 *   Decision, not a Promise); a rule with func may still return synchronously when sync clauses decide.
 * - `func`: namespace defaults to the namespace of the rule's service; names are checked at compile time.
 *   The call allows only when the function answers a JSON object whose `ack` is exactly `true` (other keys
 *   are ignored, so a function may add a reason); any other answer or a thrown error denies, and the
 *   reason carries the answer (truncated) or the error message. Recursion (a func rule pointing at its
 *   own function) is not detected here: the call deadline bounds it.
 * - Reasons may contain claim/param values (truncated to 80 characters): they are for logs; the gateway
 *   decides what reaches the client.
 */
import { ConfigError, errorMessage } from '../../common/errors';
import { isFunctionName, isNamespaceName, isServiceName, NAME_RULES } from '../../common/names';
import {
  MATCH_OPERATORS,
  MATCH_TYPES,
  RULE_MESSAGES,
  quote,
  type MatchOperator,
  type MatchType,
  type Rule,
} from '../../common/rule';
import { OperandError, parseOperand, type ArgRoot, type ParsedOperand } from './operands';

export interface RuleInput {
  auth?: Record<string, unknown>;
  params: unknown;
  caller?: string;
}
/** `reason` explains a denial (for logs/errors); on allow it names what allowed. */
export interface Decision {
  allow: boolean;
  reason: string;
}
export interface FuncTarget {
  namespace: string;
  service: string;
  function: string;
}
/** Calls a function for a `func` rule; resolves to its JSON result (the rule allows only when that is {"ack": true}). */
export type FuncCaller = (
  target: FuncTarget,
  args: { auth?: Record<string, unknown>; params: unknown; caller?: string },
) => Promise<unknown>;
export interface CompiledRule {
  /** Synchronous when the rule has no func clause. */
  evaluate(input: RuleInput, callFunc: FuncCaller): Decision | Promise<Decision>;
  readonly usesFunc: boolean;
  /**
   * True when the rule reads the caller's identity (`authenticated`, or any `args.auth` operand): the
   * gateway answers 401 instead of 403 when such a rule denies a call that carried no token, since
   * signing in may change the answer.
   */
  readonly needsAuth: boolean;
  /**
   * True when the rule reads the call's params (an `args.params` operand, or a `func` clause, which hands
   * them to another function): the gateway then refuses params with a key given twice in one object, where
   * the rule (JSON.parse keeps the last) and the function (its parser may keep the first) could disagree.
   */
  readonly readsParams: boolean;
  readonly source: Rule;
}

/** Whether a rule reads the end user's identity anywhere in it (pure; on the rule's source). */
export function ruleNeedsAuth(rule: Rule): boolean {
  switch (rule.rule) {
    case 'authenticated':
      return true;
    case 'match':
      return operandMentionsAuth(rule.f1) || operandMentionsAuth(rule.f2);
    case 'and':
    case 'or':
      return rule.clauses.some(ruleNeedsAuth);
    default:
      return false;
  }
}

function operandMentionsAuth(operand: unknown): boolean {
  return operandMentions(operand, /(^|\()args\.auth(\.|\)|$)/);
}

/** Whether a rule reads the call's params anywhere in it (pure; on the rule's source). */
export function ruleReadsParams(rule: Rule): boolean {
  switch (rule.rule) {
    case 'func':
      return true;
    case 'match':
      return operandMentions(rule.f1, PARAMS_OPERAND) || operandMentions(rule.f2, PARAMS_OPERAND);
    case 'and':
    case 'or':
      return rule.clauses.some(ruleReadsParams);
    default:
      return false;
  }
}

const PARAMS_OPERAND = /(^|\()args\.params(\.|\)|$)/;

function operandMentions(operand: unknown, variable: RegExp): boolean {
  if (typeof operand === 'string') return variable.test(operand);
  if (Array.isArray(operand)) return operand.some((o) => operandMentions(o, variable));
  return false;
}

type SyncNode = { usesFunc: false; run: (input: RuleInput) => Decision };
type AsyncNode = { usesFunc: true; run: (input: RuleInput, call: FuncCaller) => Decision | Promise<Decision> };
type Node = SyncNode | AsyncNode;

const allowed = (reason: string): Decision => Object.freeze({ allow: true, reason });
const denied = (reason: string): Decision => ({ allow: false, reason });

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `the string ${quote(value)}`;
    case 'number':
      return `the number ${quote(value)}`;
    case 'boolean':
      return `the boolean ${String(value)}`;
    case 'object':
      return 'an object';
    default:
      return `a ${typeof value}`;
  }
}

// ---------------------------------------------------------------------------------------------- values

type Value = string | number | boolean;
const NOT_OF_TYPE = Symbol('not of type');

const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/i;

/** ISO-8601 (date, or date-time with zone) → epoch ms; NaN when not a valid instant. */
export function parseIsoInstant(s: string): number {
  const m = ISO_8601.exec(s);
  if (!m) return NaN;
  const ms = Date.parse(m[4] === undefined ? `${s}T00:00:00Z` : s.replace(' ', 'T'));
  if (!Number.isFinite(ms)) return NaN;
  // Reject dates that Date.parse rolls over (2024-02-30 → March 1): check the calendar date in UTC of the
  // written offset.
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  const check = new Date(Date.UTC(y, mo - 1, d));
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return NaN;
  if (m[4] !== undefined && (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6] ?? 0) > 59)) return NaN;
  return ms;
}

const coercers: Record<MatchType, (raw: unknown) => Value | typeof NOT_OF_TYPE> = {
  string: (raw) => (typeof raw === 'string' ? raw : NOT_OF_TYPE),
  number: (raw) => (typeof raw === 'number' && Number.isFinite(raw) ? raw : NOT_OF_TYPE),
  bool: (raw) => (typeof raw === 'boolean' ? raw : NOT_OF_TYPE),
  date: (raw) => {
    if (typeof raw === 'number') return Number.isFinite(raw) ? raw : NOT_OF_TYPE;
    if (typeof raw === 'string') {
      const ms = parseIsoInstant(raw);
      return Number.isFinite(ms) ? ms : NOT_OF_TYPE;
    }
    return NOT_OF_TYPE;
  },
};

const TYPE_HELP: Record<MatchType, string> = {
  string: 'type string compares JSON strings only',
  number: 'type number compares finite JSON numbers only, never numeric strings',
  bool: 'type bool compares true/false only',
  date: 'type date accepts an ISO-8601 date or date-time with a zone (e.g. "2025-01-31T12:00:00Z"), epoch milliseconds, or utils.now()',
};

function literalFix(type: MatchType, value: unknown): string {
  if (value === null)
    return 'null is not a value; to test whether a value is present, use type bool with utils.exists(<variable>) == true';
  switch (type) {
    case 'string':
      return `write it as a JSON string: ${JSON.stringify(String(value))}`;
    case 'number':
      return typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))
        ? `write it as a JSON number: ${Number(value)} (not the string ${JSON.stringify(value)})`
        : 'write a finite JSON number such as 42';
    case 'bool':
      return typeof value === 'string' && (value === 'true' || value === 'false')
        ? `write it as a JSON boolean: ${value} (not the string ${JSON.stringify(value)})`
        : 'write true or false';
    case 'date':
      return 'write an ISO-8601 date or date-time with a zone such as "2025-01-31T12:00:00Z", epoch milliseconds such as 1738324800000, or "utils.now()"';
  }
}

const fmt = (type: MatchType, v: Value): string =>
  type === 'date' ? new Date(v as number).toISOString() : JSON.stringify(v);

/** Reads one side of a match: the typed value, or a string explaining why there is none. */
class Fail {
  constructor(readonly reason: string) {}
}

interface Side {
  /** For reasons: the variable text, or undefined for a literal. */
  readonly variable?: string;
  readonly constant: boolean;
  read(input: RuleInput): Value | Fail;
}

const hasOwn = Object.prototype.hasOwnProperty;

/** A getter for args.<root>.<path>, with segments and array indexes precomputed. */
function makeGetter(root: ArgRoot, path: readonly string[]): (input: RuleInput) => unknown {
  const rootGet: (i: RuleInput) => unknown =
    root === 'auth' ? (i) => i.auth : root === 'params' ? (i) => i.params : (i) => i.caller;
  if (path.length === 0) return rootGet;
  const segs = path.slice();
  const idx = segs.map((s) => (/^(0|[1-9]\d{0,8})$/.test(s) ? Number(s) : -1));
  const n = segs.length;
  const step = (cur: unknown, k: number): unknown => {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      const j = idx[k]!;
      return j >= 0 && j < cur.length ? cur[j] : undefined;
    }
    const key = segs[k]!;
    return hasOwn.call(cur, key) ? (cur as Record<string, unknown>)[key] : undefined;
  };
  if (n === 1) return (i) => step(rootGet(i), 0);
  if (n === 2) return (i) => step(step(rootGet(i), 0), 1);
  return (i) => {
    let cur = rootGet(i);
    for (let k = 0; k < n && cur !== undefined; k++) cur = step(cur, k);
    return cur;
  };
}

// ---------------------------------------------------------------------------------------------- compiler

class Compiler {
  constructor(private readonly namespace: string) {}

  node(rule: Rule, where: string): Node {
    if (rule === null || typeof rule !== 'object' || Array.isArray(rule)) {
      throw new ConfigError(`${where}: ${RULE_MESSAGES.notARule(rule)}`);
    }
    const kind = (rule as { rule?: unknown }).rule;
    switch (kind) {
      case 'allow': {
        const d = allowed('allow');
        return { usesFunc: false, run: () => d };
      }
      case 'deny': {
        const d = Object.freeze(denied('the rule is deny'));
        return { usesFunc: false, run: () => d };
      }
      case 'authenticated': {
        const ok = allowed('authenticated');
        const no = Object.freeze(denied('authenticated: no verified bearer token was given'));
        return { usesFunc: false, run: (i) => (i.auth != null ? ok : no) };
      }
      case 'match':
        return this.match(rule as Extract<Rule, { rule: 'match' }>, where);
      case 'and':
      case 'or':
        return this.logic(rule as Extract<Rule, { rule: 'and' | 'or' }>, where);
      case 'func':
        return this.func(rule as Extract<Rule, { rule: 'func' }>, where);
      default:
        throw new ConfigError(`${where}.rule: ${RULE_MESSAGES.kind(kind)}`);
    }
  }

  private logic(rule: Extract<Rule, { rule: 'and' | 'or' }>, where: string): Node {
    const isAnd = rule.rule === 'and';
    if (!Array.isArray(rule.clauses) || rule.clauses.length === 0) {
      throw new ConfigError(`${where}.clauses: ${RULE_MESSAGES.clauses(rule.rule)}`);
    }
    const compiled = rule.clauses.map((c, i) => ({ i, node: this.node(c, `${where}.clauses[${i}]`) }));
    const syncs = compiled
      .filter((c) => !c.node.usesFunc)
      .map((c) => ({ i: c.i, run: (c.node as SyncNode).run, label: `clauses[${c.i}]` }));
    const asyncs = compiled
      .filter((c) => c.node.usesFunc)
      .map((c) => ({ i: c.i, run: (c.node as AsyncNode).run, label: `clauses[${c.i}]` }));

    if (isAnd) {
      const ok = allowed('and: every clause allowed');
      const fail = (label: string, d: Decision): Decision => denied(`${label}: ${d.reason}`);
      const runSync = (input: RuleInput): Decision | undefined => {
        for (const c of syncs) {
          const d = c.run(input);
          if (!d.allow) return fail(c.label, d);
        }
        return undefined;
      };
      if (asyncs.length === 0) return { usesFunc: false, run: (input) => runSync(input) ?? ok };
      const runAsync = async (input: RuleInput, call: FuncCaller): Promise<Decision> => {
        for (const c of asyncs) {
          const d = await c.run(input, call);
          if (!d.allow) return fail(c.label, d);
        }
        return ok;
      };
      return { usesFunc: true, run: (input, call) => runSync(input) ?? runAsync(input, call) };
    }

    const oks = new Map(compiled.map((c) => [c.i, allowed(`or: clauses[${c.i}] allowed`)]));
    const none = (reasons: string[]): Decision => denied(`no clause of or allowed: ${reasons.join('; ')}`);
    const runSync = (input: RuleInput, reasons: string[] | undefined): Decision | undefined => {
      for (const c of syncs) {
        const d = c.run(input);
        if (d.allow) return oks.get(c.i)!;
        reasons?.push(`${c.label}: ${d.reason}`);
      }
      return undefined;
    };
    if (asyncs.length === 0) {
      return {
        usesFunc: false,
        run: (input) => {
          const hit = runSync(input, undefined);
          if (hit) return hit;
          // Denied: run again collecting reasons (pure clauses, deny path only) so the allow path allocates nothing.
          const reasons: string[] = [];
          runSync(input, reasons);
          return none(reasons);
        },
      };
    }
    const runAsync = async (input: RuleInput, call: FuncCaller, reasons: string[]): Promise<Decision> => {
      for (const c of asyncs) {
        const d = await c.run(input, call);
        if (d.allow) return oks.get(c.i)!;
        reasons.push(`${c.label}: ${d.reason}`);
      }
      return none(reasons);
    };
    return {
      usesFunc: true,
      run: (input, call) => {
        const reasons: string[] = [];
        return runSync(input, reasons) ?? runAsync(input, call, reasons);
      },
    };
  }

  private func(rule: Extract<Rule, { rule: 'func' }>, where: string): AsyncNode {
    const namespace = rule.namespace ?? this.namespace;
    if (typeof namespace !== 'string' || !isNamespaceName(namespace)) {
      throw new ConfigError(
        `${where}.namespace: ${quote(namespace)} is not a valid namespace: it must be ${NAME_RULES.namespace}`,
      );
    }
    if (typeof rule.service !== 'string' || !isServiceName(rule.service)) {
      throw new ConfigError(
        `${where}.service: ${quote(rule.service)} is not a valid service name: it must be ${NAME_RULES.service}`,
      );
    }
    if (typeof rule.func !== 'string' || !isFunctionName(rule.func)) {
      throw new ConfigError(
        `${where}.func: ${quote(rule.func)} is not a valid function name: it must be ${NAME_RULES.function}`,
      );
    }
    const target: FuncTarget = Object.freeze({ namespace, service: rule.service, function: rule.func });
    const label = `${namespace}/${rule.service}.${rule.func}`;
    const ok = allowed(`func ${label} acknowledged`);
    return {
      usesFunc: true,
      run: async (input, call) => {
        let result: unknown;
        try {
          result = await call(target, { auth: input.auth, params: input.params, caller: input.caller });
        } catch (err) {
          return denied(`func ${label} failed: ${errorMessage(err)}`);
        }
        if (
          result !== null &&
          typeof result === 'object' &&
          !Array.isArray(result) &&
          (result as { ack?: unknown }).ack === true
        ) {
          return ok;
        }
        return denied(`func ${label} answered ${quote(result)}, not {"ack": true}`);
      },
    };
  }

  // ------------------------------------------------------------------------------------------ match

  private match(rule: Extract<Rule, { rule: 'match' }>, where: string): SyncNode {
    const type = rule.type;
    const op = rule.eval;
    if (!(MATCH_TYPES as readonly unknown[]).includes(type)) {
      throw new ConfigError(`${where}.type: ${RULE_MESSAGES.matchType(type)}`);
    }
    if (!(MATCH_OPERATORS as readonly unknown[]).includes(op)) {
      throw new ConfigError(`${where}.eval: ${RULE_MESSAGES.operator(op)}`);
    }
    const allowedOps: Record<MatchType, readonly MatchOperator[]> = {
      string: ['==', '!=', 'in', 'notIn'],
      number: MATCH_OPERATORS,
      bool: ['==', '!='],
      date: ['==', '!=', '<', '<=', '>', '>=', 'in', 'notIn'],
    };
    if (!allowedOps[type].includes(op)) {
      const extra =
        type === 'bool'
          ? '; for a list use type string/number, and to test presence compare utils.exists(<variable>) == true'
          : '; to order values use type number or date';
      throw new ConfigError(
        `${where}.eval: "${op}" is not allowed for type "${type}": type ${type} supports ${allowedOps[type].join(' ')}${extra}`,
      );
    }

    const p1 = this.parse(rule.f1, `${where}.f1`);
    const p2 = this.parse(rule.f2, `${where}.f2`);
    const isList = op === 'in' || op === 'notIn';
    if (p1.kind === 'array') {
      throw new ConfigError(
        `${where}.f1: an array is only allowed as f2 of "in"/"notIn"; f1 must be a single value or variable`,
      );
    }
    if (!isList && p2.kind === 'array') {
      throw new ConfigError(
        `${where}.f2: an array is only allowed with "in"/"notIn"; use eval "in" to test membership`,
      );
    }
    if (isList && p2.kind !== 'array' && p2.kind !== 'var') {
      throw new ConfigError(
        `${where}.f2: "${op}" needs a list: write an array such as ["admin", "editor"] or a variable that holds an array such as "args.auth.roles" (got ${quote(rule.f2)})`,
      );
    }
    const left = this.side(p1, type, `${where}.f1`);
    const leftLabel = (v: Value): string => (left.variable ? `${left.variable} (${fmt(type, v)})` : fmt(type, v));

    if (!isList) {
      const right = this.side(p2, type, `${where}.f2`);
      const rightLabel = (v: Value): string => (right.variable ? `${right.variable} (${fmt(type, v)})` : fmt(type, v));
      const cmp = comparator(op);
      const ok = allowed('match');
      return {
        usesFunc: false,
        run: (input) => {
          const a = left.read(input);
          if (a instanceof Fail) return denied(`match failed: ${a.reason}`);
          const b = right.read(input);
          if (b instanceof Fail) return denied(`match failed: ${b.reason}`);
          return cmp(a, b) ? ok : denied(`match failed: ${leftLabel(a)} ${op} ${rightLabel(b)} is false`);
        },
      };
    }

    const negate = op === 'notIn';
    const ok = allowed('match');
    const listLabel = p2.kind === 'var' ? p2.text : quote(rule.f2, 120);
    const contains = this.list(p2, type, `${where}.f2`);
    return {
      usesFunc: false,
      run: (input) => {
        const a = left.read(input);
        if (a instanceof Fail) return denied(`match failed: ${a.reason}`);
        const r = contains(input, a);
        if (r instanceof Fail) return denied(`match failed: ${r.reason}`);
        return r !== negate ? ok : denied(`match failed: ${leftLabel(a)} ${op} ${listLabel} is false`);
      },
    };
  }

  private parse(op: unknown, where: string): ParsedOperand {
    try {
      return parseOperand(op);
    } catch (err) {
      if (err instanceof OperandError) throw new ConfigError(`${where}: ${err.message}`);
      throw err;
    }
  }

  /** A scalar side of a match: checks its type at compile time when it can. */
  private side(p: ParsedOperand, type: MatchType, where: string): Side {
    switch (p.kind) {
      case 'array':
        throw new ConfigError(`${where}: an array is only allowed as f2 of "in"/"notIn"`);
      case 'literal': {
        const v = p.value === null ? NOT_OF_TYPE : coercers[type](p.value);
        if (v === NOT_OF_TYPE) {
          throw new ConfigError(
            `${where}: ${quote(p.value)} is not a ${type} (${TYPE_HELP[type]}): ${literalFix(type, p.value)}`,
          );
        }
        return { constant: true, read: () => v };
      }
      case 'now':
        if (type !== 'date') {
          throw new ConfigError(
            `${where}: utils.now() is a date: use type "date" to compare it (or, for epoch seconds claims such as exp, type number with a literal)`,
          );
        }
        return { constant: false, variable: 'utils.now()', read: () => Date.now() };
      case 'exists': {
        if (type !== 'bool') {
          throw new ConfigError(
            `${where}: ${p.text} is true or false: use type "bool" and compare it with true or false`,
          );
        }
        const get = makeGetter(p.target.root, p.target.path);
        return { constant: false, variable: p.text, read: (i) => get(i) != null };
      }
      case 'var': {
        const get = makeGetter(p.root, p.path);
        const coerce = coercers[type];
        const text = p.text;
        return {
          constant: false,
          variable: text,
          read: (i) => {
            const raw = get(i);
            if (raw === undefined || raw === null)
              return new Fail(`${text} is not set (a missing value never matches)`);
            const v = coerce(raw);
            return v === NOT_OF_TYPE ? new Fail(`${text} is ${describe(raw)}, not a ${type} (${TYPE_HELP[type]})`) : v;
          },
        };
      }
    }
  }

  /** f2 of in/notIn: returns a membership test, Fail when the list (or an element) cannot be read. */
  private list(p: ParsedOperand, type: MatchType, where: string): (input: RuleInput, v: Value) => boolean | Fail {
    if (p.kind === 'array') {
      const items = p.items.map((item, k) => {
        if (item.kind === 'array')
          throw new ConfigError(`${where}[${k}]: nested arrays are not allowed; write a flat list`);
        return this.side(item, type, `${where}[${k}]`);
      });
      if (items.every((s) => s.constant)) {
        const set = new Set<Value>(items.map((s) => s.read(undefined as unknown as RuleInput) as Value));
        return (_i, v) => set.has(v);
      }
      return (input, v) => {
        let found = false;
        for (const s of items) {
          const e = s.read(input);
          if (e instanceof Fail) return e;
          if (e === v) found = true;
        }
        return found;
      };
    }
    if (p.kind !== 'var') throw new ConfigError(`${where}: "in"/"notIn" needs an array or a variable holding one`);
    const get = makeGetter(p.root, p.path);
    const coerce = coercers[type];
    const text = p.text;
    return (input, v) => {
      const raw = get(input);
      if (raw === undefined || raw === null) return new Fail(`${text} is not set (a missing value never matches)`);
      if (!Array.isArray(raw)) return new Fail(`${text} is ${describe(raw)}, not an array`);
      let found = false;
      for (let k = 0; k < raw.length; k++) {
        const e = coerce(raw[k]);
        if (e === NOT_OF_TYPE) return new Fail(`element ${k} of ${text} is ${describe(raw[k])}, not a ${type}`);
        if (e === v) found = true;
      }
      return found;
    };
  }
}

function comparator(op: MatchOperator): (a: Value, b: Value) => boolean {
  switch (op) {
    case '==':
      return (a, b) => a === b;
    case '!=':
      return (a, b) => a !== b;
    case '<':
      return (a, b) => (a as number) < (b as number);
    case '<=':
      return (a, b) => (a as number) <= (b as number);
    case '>':
      return (a, b) => (a as number) > (b as number);
    case '>=':
      return (a, b) => (a as number) >= (b as number);
    default:
      throw new Error(`unreachable operator ${op}`);
  }
}

/**
 * Compiles a rule once. Throws ConfigError naming the location (`where` plus the path inside the rule,
 * e.g. 'default/greeter: spec.functions[hello].rule.clauses[1].f1'), what is wrong and how to fix it.
 */
export function compileRule(rule: Rule, where: string, context: { namespace: string }): CompiledRule {
  const root = new Compiler(context.namespace).node(rule, where);
  const needsAuth = ruleNeedsAuth(rule);
  const readsParams = ruleReadsParams(rule);
  if (!root.usesFunc) {
    const run = root.run;
    return Object.freeze({
      evaluate: (input: RuleInput) => run(input),
      usesFunc: false,
      needsAuth,
      readsParams,
      source: rule,
    });
  }
  const run = root.run;
  return Object.freeze({
    evaluate: (input: RuleInput, callFunc: FuncCaller) => run(input, callFunc),
    usesFunc: true,
    needsAuth,
    readsParams,
    source: rule,
  });
}

const DENY_ALL_DECISION: Decision = Object.freeze({
  allow: false,
  reason: 'no rule is configured for this function or its service, and the gateway default denies every call',
});

/** The gateway-wide default when none is configured. */
export const DENY_ALL: CompiledRule = Object.freeze({
  evaluate: () => DENY_ALL_DECISION,
  usesFunc: false,
  needsAuth: false,
  readsParams: false,
  source: { rule: 'deny' } as Rule,
});
