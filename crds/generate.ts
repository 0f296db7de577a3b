/**
 * Generates crds/fnmesh.io_functionservices.yaml, the FunctionService CRD, from one description of the schema.
 *
 *   npm run generate               build, then rewrite the YAML
 *   npm run generate -- --check    exit 1 when the committed YAML differs from what this generator writes
 *
 * crds/generate.test.ts renders the YAML in memory and fails when the committed file has drifted, and
 * compares the schema with common/manifest.ts (the zod schema that `fnmesh local` and the gateway use), so
 * the two cannot silently disagree. The names (group, kind, plural), the name patterns and the rule kinds,
 * types and operators come from common/; the leaves of the spec (numbers with their bounds and defaults,
 * strings with their patterns, the match types and operators) are taken from the zod schema by
 * `z.toJSONSchema`. What only Kubernetes needs is written here: descriptions (`kubectl explain`), int32
 * formats, maxLength bounds (CEL's cost estimate), the x-kubernetes-* markers and the CEL rules. The failure
 * settings (retry, idempotent, outlierDetection, circuitBreaker) and their cross-field rules are in
 * crds/failure-settings.ts, the leaf builder (`fromZod`) in crds/openapi.ts.
 *
 * Why a generator: rules nest (`and`/`or` clauses hold any rule) but a structural OpenAPI schema cannot be
 * recursive, so the rule schema is unrolled to a fixed depth; and the mistyped-variable check is a regular
 * expression built from word lists. Both are easier to keep right as code than by hand.
 *
 * Limits that exist only because of the API server:
 * - `and`/`or` nest at most RULE_NESTING levels deep, with at most MAX_CLAUSES clauses each, and a service has
 *   at most MAX_FUNCTIONS functions: the API server refuses a CRD whose CEL rules could cost too much in the
 *   worst case, and that cost is the product of these bounds.
 * - A CEL message may not build a string from an int (`string(x)`: its cost estimate is unbounded) nor filter
 *   then map the functions; the failure settings' messages are static or name the first function that fails.
 * - Operands (`f1`, `f2`) may be strings, numbers, booleans or lists, so they are untyped in the schema and CEL
 *   cannot see them; the mistyped-variable check is an OpenAPI `pattern` (RE2) instead, for string operands
 *   only (not for the items of an `in` list). The gateway compiles every rule it loads and refuses (and
 *   reports) anything this schema lets through.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  API_VERSION,
  CRD_CATEGORIES,
  CRD_GROUP,
  CRD_NAME,
  CRD_PLURAL,
  CRD_SHORT_NAMES,
  CRD_SINGULAR,
  CRD_VERSION,
  KIND,
  LIST_KIND,
} from '../common/crd-names';
import { envVarSchema, functionServiceSpecSchema, functionSpecSchema } from '../common/manifest';
import { DNS_LABEL, FUNCTION_NAME } from '../common/names';
import {
  ARG_ROOTS,
  LOGIC_RULE_KINDS,
  MATCH_OPERATORS,
  MATCH_TYPES,
  RULE_KINDS,
  UTIL_FUNCTIONS,
  matchOperatorSchema,
  matchTypeSchema,
} from '../common/rule';
import { INT32, fromZod, type Schema, type Validation } from './openapi';
import { circuitBreakerSchema, outlierDetectionSchema, retrySchema, specFailureValidations } from './failure-settings';
import { DEFAULT_QUEUE_LENGTH, IDEMPOTENT_RETRY_ON } from '../common/resilience';

export { fromZod, type Schema, type Validation } from './openapi';

/** The file this generator writes, in the crds/ folder of the checkout. */
export const CRD_FILE = `${CRD_GROUP}_${CRD_PLURAL}.yaml`;

/** Deepest `and`/`or` nesting: a rule at depth RULE_NESTING (counting the function's rule as 0) must be a leaf. */
export const RULE_NESTING = 4;
export const MAX_CLAUSES = 6;
export const MAX_FUNCTIONS = 256;

/** Why a service name is refused (CEL quotes it after the name; no single quotes, it sits in a CEL string). */
const NAME_HELP =
  'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters (the service name becomes a NATS subject token, so dots are not allowed)';

// Kubernetes' resource.Quantity, as controller-gen writes it.
const QUANTITY =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

const ALL_RULES: readonly string[] = RULE_KINDS;
const LEAF_RULES = RULE_KINDS.filter((k) => !(LOGIC_RULE_KINDS as readonly string[]).includes(k));

// ------------------------------------------------------------------------------------ mistyped variables

/**
 * Near misses of `args`/`utils` that are refused as the first dotted segment of a string operand (compared
 * case-insensitively). The gateway refuses every word within edit distance 2; this list holds the common
 * slips (a dropped, doubled or swapped letter). Every string this pattern refuses, the gateway refuses too
 * (crds/generate.test.ts checks that against gateway/rules/operands.ts).
 */
export const NEAR_MISSES: readonly string[] = [
  // args
  'arg',
  'ags',
  'ars',
  'rgs',
  'agrs',
  'rags',
  'arsg',
  'aargs',
  'arrgs',
  'arggs',
  'argss',
  'args_',
  '_args',
  'argz',
  'arsg',
  'atgs',
  'arfs',
  'afgs',
  'arhs',
  // utils
  'util',
  'utls',
  'utis',
  'tils',
  'uils',
  'utlis',
  'utisl',
  'uitls',
  'tuils',
  'uttils',
  'utiils',
  'utills',
  'utilss',
  'uutils',
  'utils_',
  '_utils',
  'utilz',
  'utli',
  'utiles',
  'uitl',
  'utul',
  'utuls',
  'itils',
  'ytils',
];

const esc = (s: string): string => s.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
/** A letter matched in either case, as a class (RE2 and JavaScript agree on this, unlike inline flags). */
const ci = (s: string): string =>
  [...s].map((c) => (/[a-z]/i.test(c) ? `[${c.toUpperCase()}${c.toLowerCase()}]` : esc(c))).join('');
/** Every spelling of `word` in mixed case except the all-lowercase one. */
function notAllLower(word: string): string {
  const alts: string[] = [];
  for (let i = 0; i < word.length; i++) {
    alts.push(esc(word.slice(0, i)) + word[i]!.toUpperCase() + ci(word.slice(i + 1)));
  }
  return `(?:${alts.join('|')})`;
}

/**
 * A regex for the strings over an alphabet that are NOT one of `words` (RE2 has no lookahead, so the
 * complement is spelled out through a trie). `other(chars)` gives a class of the alphabet minus `chars`;
 * `any` is the alphabet's class.
 */
interface Trie {
  word: boolean;
  next: Map<string, Trie>;
}
function notOneOf(words: readonly string[], any: string, other: (chars: string[]) => string): string {
  const trie: Trie = { word: false, next: new Map() };
  for (const w of words) {
    let n = trie;
    for (const c of w) {
      if (!n.next.has(c)) n.next.set(c, { word: false, next: new Map() });
      n = n.next.get(c)!;
    }
    n.word = true;
  }
  const walk = (n: Trie): string => {
    const alts: string[] = [];
    if (!n.word) alts.push('');
    alts.push(`${other([...n.next.keys()])}${any}*`);
    for (const [c, child] of n.next) alts.push(esc(c) + walk(child));
    return `(?:${alts.join('|')})`;
  };
  return walk(trie);
}
const segmentOther = (chars: string[]): string => `[^.${chars.map(esc).join('')}]`;
const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_';
const letterOther = (chars: string[]): string => `[${[...LETTERS].filter((c) => !chars.includes(c)).join('')}]`;

/** The strings that are refused as operands: mistyped variables (a subset of what the gateway refuses). */
export function typoPattern(): string {
  const notRoot = notOneOf(ARG_ROOTS, '[^.]', segmentOther);
  /** After `args.` (at `end` = `$` or the closing parenthesis of utils.exists): a bad root or path. */
  const badArgsPath = (end: string): string[] => [
    `${notRoot}(?:\\.|${end})`, // unknown (or empty) root: args.auht.sub
    'caller\\.', // args.caller has no fields
    `(?:[^.]*\\.)+(?:\\s[^.]*|[^.]*\\s)?(?:\\.|${end})`, // an empty segment, or one with spaces around it
  ];
  const notArgsPrefix = (() => {
    // Any text that does not begin with "args." (for utils.exists(<inner>)).
    const p = 'args.';
    let rx = '';
    for (let i = p.length - 1; i >= 0; i--) rx = `(?:|[^${esc(p[i]!)}][\\s\\S]*|${esc(p[i]!)}${rx})`;
    return rx;
  })();
  const heads = NEAR_MISSES.map(ci).join('|');
  const alternatives = [
    // a near miss of args/utils as the first dotted segment: arg.auth.sub, utls.now()
    `^\\s*(?:${heads})\\s*[.(]`,
    // args/utils in the wrong case, after spaces, or before spaces: Args.auth.sub, " args.auth.sub"
    `^\\s*(?:${notAllLower('args')}|${notAllLower('utils')})\\s*[.(]`,
    `^\\s+(?:args|utils)\\s*[.(]`,
    '^(?:args|utils)(?:\\s+[.(]|\\()',
    '^(?:args|utils)$',
    ...badArgsPath('$').map((p) => `^args\\.${p}`),
    // utils.<fn> not called, an unknown function, a missing closing parenthesis
    '^utils\\.[A-Za-z_]*(?:[^A-Za-z_(]|$)',
    `^utils\\.${notOneOf(UTIL_FUNCTIONS, '[A-Za-z_]', letterOther)}\\(`,
    '^utils\\.[A-Za-z_]*\\((?:[\\s\\S]*[^)])?$',
    // utils.now(x), utils.exists(<not a variable>), utils.exists(args.auht.x)
    '^utils\\.now\\([\\s\\S]*\\S[\\s\\S]*\\)$',
    `^utils\\.exists\\(${notArgsPrefix}\\)$`,
    ...badArgsPath('\\)$').map((p) => `^utils\\.exists\\(args\\.${p}`),
  ];
  return alternatives.join('|');
}

/**
 * A pattern that no string matches ([^\s\S] is the empty class), written as a sentence: when a string operand
 * is refused, the API server's message quotes the pattern, so the sentence tells the user why.
 */
export const OPERAND_HELP =
  '^must not look like a mistyped variable; the variables are args.auth.<claim>, args.params.<path>, args.caller, utils.exists(<variable>) and utils.now()[^\\s\\S]';

/** Sentence-patterns, quoted by the API server when a match rule lacks f1 or f2 (any other kind passes). */
const NOT_MATCH = `^(${ALL_RULES.filter((k) => k !== 'match').join('|')})$|^(a match rule needs both f1 and f2)[^\\s\\S]`;
/** Another sentence-pattern: quoted by the API server when f1/f2 are given on a rule other than match. */
const MATCH_ONLY = '^match$|^(f1 and f2 belong to match rules only)[^\\s\\S]';

// ------------------------------------------------------------------------------------ schema pieces

const str = (description: string, extra: Schema = {}): Schema => ({ type: 'string', description, ...extra });
const int = (description: string, extra: Schema = {}): Schema => ({ type: 'integer', description, ...extra });

/**
 * The length of the longest of `values`: the maxLength of an enum, which bounds the CEL cost the API server
 * estimates for the messages that quote the field (it does not read the bound from the enum itself).
 */
const longest = (values: readonly string[]): number => Math.max(...values.map((v) => v.length));

function operandSchema(name: 'f1' | 'f2', role: string): Schema {
  return {
    description:
      `${role} A literal (a string, a number, true/false, or for "in"/"notIn" in f2 a list) or a variable: ` +
      'args.auth.<claim> (a claim of the verified JWT), args.params.<path> (the call params; array items by index, ' +
      'args.params.items.0), args.caller ("namespace/service" of a calling function), utils.exists(<variable>) ' +
      '(type bool) or utils.now() (type date). A string starting with "args." or "utils." is always a variable, and a ' +
      'string that looks like a mistyped variable (arg.auth.sub, Args.auth.sub, args.auht.sub, utils.exist(...)) is ' +
      `refused rather than read as a literal. Example: ${name === 'f1' ? 'args.auth.role' : '[admin, owner]'}.`,
    'x-kubernetes-preserve-unknown-fields': true,
    // A non-string passes the first branch (patterns apply to strings only); a string must pass the second.
    anyOf: [{ pattern: OPERAND_HELP }, { not: { pattern: typoPattern() } }],
  };
}

/** The schema of a rule at `depth` (0 = a function's rule); at RULE_NESTING only leaf rules are allowed. */
function ruleSchema(depth: number): Schema {
  const leafOnly = depth >= RULE_NESTING;
  const kinds: readonly string[] = leafOnly ? LEAF_RULES : ALL_RULES;
  const nestingNote = leafOnly
    ? `This rule is nested ${depth} levels deep, the most the API server accepts, so it cannot be "and" or "or".`
    : `Rules nest through "and"/"or" up to ${RULE_NESTING} levels deep (this one is at level ${depth}).`;
  const properties: Record<string, Schema> = {
    rule: str(
      'The kind of rule. allow: always allows. deny: never allows. authenticated: allows a call that carries a valid ' +
        'JWT. match: allows when "f1 eval f2" holds for the given type. and/or: allows when all/any of "clauses" ' +
        'allow. func: asks another function, which must answer {"ack": true}. ' +
        nestingNote,
      { enum: [...kinds], maxLength: longest(kinds) },
    ),
    type: fromZod(
      matchTypeSchema,
      'For match: how f1 and f2 are compared, with no coercion. string: JSON strings. number: finite JSON numbers ' +
        '(a claim "42" is not 42). bool: true/false. date: ISO-8601 dates or date-times with a zone ' +
        '("2025-01-31T12:00:00Z"), epoch milliseconds, or utils.now() (JWT exp/iat are seconds: compare them as number).',
      { maxLength: longest(MATCH_TYPES) },
    ),
    eval: fromZod(
      matchOperatorSchema,
      'For match: the operator. == and != for every type; <, <=, >, >= for number and date only; in and notIn ' +
        '(f1 is one of the list f2) for string, number and date. Example: "==".',
      { maxLength: longest(MATCH_OPERATORS) },
    ),
    f1: operandSchema('f1', 'For match: the left operand.'),
    f2: operandSchema('f2', 'For match: the right operand; for "in"/"notIn" a list or a variable holding one.'),
    service: str(
      "For func: the service of the function to ask (a DNS label). The function is called with this call's params, " +
        'claims and caller, within the same deadline, and allows only by answering {"ack": true}. Example: authz.',
      { pattern: DNS_LABEL.source, maxLength: 63 },
    ),
    func: str('For func: the function to ask. Example: canGreet.', { pattern: FUNCTION_NAME.source, maxLength: 63 }),
    namespace: str('For func: the namespace of that service. Default: the namespace of this FunctionService.', {
      pattern: DNS_LABEL.source,
      maxLength: 63,
    }),
  };
  if (!leafOnly) {
    properties.clauses = {
      type: 'array',
      description:
        `For and/or: the rules to combine (1 to ${MAX_CLAUSES}), each any kind of rule. "and" allows when every ` +
        'clause allows, "or" when any does; clauses without func are evaluated first, and evaluation stops as soon ' +
        'as the answer is known.',
      minItems: 1,
      maxItems: MAX_CLAUSES,
      items: ruleSchema(depth + 1),
    };
  }
  const validations: Validation[] = [
    {
      rule: "self.rule != 'match' || (has(self.type) && has(self.eval))",
      message:
        'a match rule needs type, eval, f1 and f2, e.g. {rule: match, type: string, eval: ==, f1: args.auth.sub, f2: root}',
      fieldPath: '.type',
      reason: 'FieldValueRequired',
    },
    {
      rule: "self.rule == 'match' || (!has(self.type) && !has(self.eval))",
      message: 'type and eval belong to match rules only',
      messageExpression: `'type and eval belong to match rules only, not to "' + self.rule + '" rules'`,
      reason: 'FieldValueForbidden',
    },
    {
      rule: "self.rule != 'func' || (has(self.service) && has(self.func))",
      message: 'a func rule needs service and func, e.g. {rule: func, service: authz, func: canGreet}',
      fieldPath: '.service',
      reason: 'FieldValueRequired',
    },
    {
      rule: "self.rule == 'func' || (!has(self.service) && !has(self.func) && !has(self.namespace))",
      message: 'service, func and namespace belong to func rules only',
      messageExpression: `'service, func and namespace belong to func rules only, not to "' + self.rule + '" rules'`,
      reason: 'FieldValueForbidden',
    },
    {
      rule: "!has(self.type) || self.type != 'bool' || !has(self.eval) || self.eval == '==' || self.eval == '!='",
      message: 'type bool takes only the operators == and !=',
      messageExpression: `'type bool takes only the operators == and !=, not "' + self.eval + '"'`,
      fieldPath: '.eval',
    },
    {
      rule: "!has(self.type) || self.type != 'string' || !has(self.eval) || !(self.eval in ['<', '<=', '>', '>='])",
      message: 'type string takes ==, !=, in and notIn; the ordering operators <, <=, >, >= need type number or date',
      messageExpression:
        `'type string takes ==, !=, in and notIn, not "' + self.eval + '"; ` +
        `the ordering operators <, <=, >, >= need type number or date'`,
      fieldPath: '.eval',
    },
  ];
  if (!leafOnly) {
    validations.splice(2, 0, {
      rule: "(self.rule != 'and' && self.rule != 'or') == !has(self.clauses)",
      message:
        'and/or rules need a non-empty clauses list, e.g. {rule: and, clauses: [{rule: authenticated}]}, and only and/or rules take clauses',
      messageExpression:
        `has(self.clauses) ? 'only and/or rules take clauses, not "' + self.rule + '" rules' : ` +
        `'and/or rules need a non-empty clauses list, e.g. {rule: ' + self.rule + ', clauses: [{rule: authenticated}]}'`,
      fieldPath: '.clauses',
    });
  }
  return {
    type: 'object',
    description:
      "A rule (Space Cloud's rule language): {rule: allow}, {rule: deny}, {rule: authenticated}, " +
      '{rule: match, type, eval, f1, f2}, {rule: and|or, clauses: [rules]}, or {rule: func, service, func, namespace?}. ' +
      nestingNote,
    required: ['rule'],
    properties,
    // f1 and f2 are untyped, so CEL cannot see them: whether they are there is checked here.
    allOf: [
      // a match rule needs f1 and f2
      { anyOf: [{ required: ['f1', 'f2'] }, { properties: { rule: { pattern: NOT_MATCH } } }] },
      // f1 and f2 belong to match rules only
      {
        anyOf: [
          { not: { anyOf: [{ required: ['f1'] }, { required: ['f2'] }] } },
          { properties: { rule: { pattern: MATCH_ONLY } } },
        ],
      },
    ],
    'x-kubernetes-validations': validations,
  };
}

const quantity = (what: string): Schema => ({
  type: 'object',
  description: `${what} Keys are resource names (cpu, memory, ephemeral-storage, ...), values quantities. Example: {cpu: 100m, memory: 128Mi}.`,
  additionalProperties: {
    description: 'A quantity such as 100m, 0.5, 128Mi or 1G.',
    'x-kubernetes-int-or-string': true,
    anyOf: [{ type: 'integer' }, { type: 'string' }],
    pattern: QUANTITY,
  },
});

function specSchema(): Schema {
  const spec = functionServiceSpecSchema.shape;
  const fn = functionSpecSchema.shape;
  const container = spec.container.unwrap().shape;
  const local = spec.local.unwrap().shape;
  const imagePullSecret = spec.imagePullSecrets.unwrap().element.shape;
  return {
    type: 'object',
    description:
      'What to run and how calls to it are authorized. The operator runs it as a Deployment whose pods hold the ' +
      "function container plus the injected fnmesh sidecar; the gateway takes the functions' rules from here.",
    'x-kubernetes-validations': specFailureValidations(),
    properties: {
      replicas: fromZod(
        spec.replicas,
        `How many replicas (pods) run the service; calls are load-balanced across them. 0 stops it. Default: 1. Also set by \`kubectl scale ${CRD_SHORT_NAMES[0]} NAME --replicas=N\`.`,
        INT32,
      ),
      port: fromZod(
        spec.port,
        'The port the function process serves HTTP on, on 127.0.0.1 in its pod (POST /<function> with the params as JSON). Default: 8080.',
        INT32,
      ),
      healthPath: fromZod(
        spec.healthPath,
        'The function\'s health path on that port; any answer below 500 means the function is up. Must start with "/". Default: /healthz.',
        { maxLength: 1024 },
      ),
      concurrency: fromZod(
        spec.concurrency,
        'Calls one replica runs at once; calls beyond that wait in its queue (queueLength). Default: 64.',
        INT32,
      ),
      queueLength: fromZod(
        spec.queueLength,
        'Calls one replica holds waiting for a concurrency slot. When the queue is full the replica leaves its queue ' +
          'group until it has room again, and the calls it could not take go to another replica, retried by the ' +
          'gateway as never executed (a caller sees "overloaded", HTTP 429, only when every replica is full). 0: no ' +
          `queue. Default: ${DEFAULT_QUEUE_LENGTH}.`,
        INT32,
      ),
      retry: retrySchema('service'),
      outlierDetection: outlierDetectionSchema(),
      circuitBreaker: circuitBreakerSchema(),
      timeoutMs: fromZod(
        spec.timeoutMs,
        "The default deadline of every function of the service, in milliseconds, when the caller gives none; a function's own timeoutMs overrides it. Default: 10000 (10 s); at most 3600000 (1 h).",
        INT32,
      ),
      functions: {
        type: 'array',
        description:
          `The service's functions and who may call them (at most ${MAX_FUNCTIONS}, each name once). A function ` +
          'named "default" gives the rule for any function of the service that is not listed; a function with no ' +
          "rule of its own falls back to it, then to the gateway's default rule (deny unless configured). Default: [].",
        maxItems: MAX_FUNCTIONS,
        default: [],
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: {
          type: 'object',
          description: 'One function: its name, its deadline, its rule and whether its calls may be retried.',
          required: ['name'],
          properties: {
            name: fromZod(
              fn.name,
              'The function name, the last segment of its call path (POST /v1/api/{namespace}/functions/{service}/{name}): letters, digits, "_" and "-", starting with a letter or "_", at most 63 characters. "default" names the fallback rule of the service. Example: hello.',
              { maxLength: 63 },
            ),
            timeoutMs: fromZod(
              fn.timeoutMs,
              "This function's deadline in milliseconds when the caller gives none, and the cap on what a caller may ask. Default: the service's timeoutMs.",
              INT32,
            ),
            rule: ruleSchema(0),
            idempotent: fromZod(
              fn.idempotent,
              'True when running a call twice is safe: calls that may have run (the connection to the function reset ' +
                "mid-answer, an attempt's perTryTimeoutMs, the function's own 5xx) are retried too, with retryOn " +
                `${JSON.stringify(IDEMPOTENT_RETRY_ON)} unless retry.retryOn (its own or spec.retry's) says otherwise. ` +
                'Calls that never reached the function are retried either way. Default: false (at-most-once).',
            ),
            retry: retrySchema('function'),
          },
        },
      },
      container: {
        type: 'object',
        description:
          'The container that runs the function process in Kubernetes; the operator injects the fnmesh sidecar beside it. Needed to run in a cluster; `fnmesh local` uses spec.local instead.',
        required: ['image'],
        properties: {
          image: fromZod(container.image, 'The container image. Example: ghcr.io/fnmesh/examples-greeter:0.1.0.'),
          imagePullPolicy: fromZod(
            container.imagePullPolicy,
            "When the kubelet pulls the image: Always, IfNotPresent or Never, as in a Pod. Default: Kubernetes' default for the image (Always for :latest or no tag, else IfNotPresent).",
          ),
          command: fromZod(container.command, "Overrides the image's entrypoint. Example: [node, index.js].", {
            items: { description: 'One word of the command.' },
          }),
          args: fromZod(container.args, 'Arguments to the entrypoint (or to command).', {
            items: { description: 'One argument.' },
          }),
          env: {
            type: 'array',
            description: 'Environment variables of the function container, as in a Pod (each name once).',
            'x-kubernetes-list-type': 'map',
            'x-kubernetes-list-map-keys': ['name'],
            items: {
              type: 'object',
              description: "One environment variable: a value, or a valueFrom source as in a Pod's container.",
              required: ['name'],
              properties: {
                name: fromZod(envVarSchema.shape.name, 'The variable name. Example: LOG_LEVEL.'),
                value: fromZod(envVarSchema.shape.value, 'The value. Example: debug.'),
                valueFrom: {
                  type: 'object',
                  description:
                    "Where the value comes from, exactly as a Pod's env[].valueFrom (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef). Example: {secretKeyRef: {name: db, key: password}}.",
                  'x-kubernetes-preserve-unknown-fields': true,
                },
              },
            },
          },
          resources: {
            type: 'object',
            description: 'Compute resources of the function container, as in a Pod.',
            properties: {
              requests: quantity('The resources the container is guaranteed (used for scheduling).'),
              limits: quantity('The most the container may use.'),
            },
          },
        },
      },
      imagePullSecrets: {
        type: 'array',
        description:
          "Secrets in the service's namespace that the kubelet pulls the pod's images with (the function's and the sidecar's), as a Pod's imagePullSecrets. Ignored by `fnmesh local`.",
        maxItems: 32,
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['name'],
        items: {
          type: 'object',
          description: 'One pull Secret, by name.',
          required: ['name'],
          properties: {
            name: fromZod(
              imagePullSecret.name,
              'The name of a Secret of type kubernetes.io/dockerconfigjson. Example: regcred.',
            ),
          },
        },
      },
      local: {
        type: 'object',
        description:
          "How `fnmesh local` starts one replica's function process on a developer's machine. Ignored in a cluster.",
        required: ['command'],
        properties: {
          command: fromZod(
            local.command,
            'The program and its arguments (at least the program). Example: [node, dist/index.js].',
            { items: { description: 'One word of the command line (not empty).' } },
          ),
          cwd: fromZod(local.cwd, "Working directory, relative to the manifest file's folder. Default: that folder."),
          env: {
            type: 'object',
            description: 'Extra environment variables of the process. Example: {LOG_LEVEL: debug}.',
            additionalProperties: str('The value of the variable.'),
          },
        },
      },
    },
  };
}

function statusSchema(): Schema {
  const count = (d: string): Schema => int(d, { format: 'int32', minimum: 0 });
  return {
    type: 'object',
    description: 'What the operator last saw. Written by the operator only.',
    properties: {
      observedGeneration: int(
        'The metadata.generation of the spec this status describes; when it is less than metadata.generation, the operator has not yet acted on the latest spec.',
        { format: 'int64' },
      ),
      replicas: count('Replicas (pods) that exist for the service.'),
      readyReplicas: count(
        'Replicas whose function and sidecar are both ready to take calls. A sidecar is not ready while it keeps its ' +
          'replica out of rotation: its function down or failing its health check, or the replica ejected by outlier ' +
          "detection (the sidecar's GET /readyz says which).",
      ),
      updatedReplicas: count('Replicas running the latest spec.'),
      availableReplicas: count("Replicas ready for at least the Deployment's minReadySeconds."),
      selector: str(
        "The label selector of the service's pods, in the string form (`kubectl get pods -l <selector>`); used by the scale subresource.",
      ),
      conditions: {
        type: 'array',
        description:
          'The latest observations: Ready (replicas are ready to take calls), Progressing (a rollout is under way), Degraded (the operator cannot realise the spec; see reason and message).',
        'x-kubernetes-list-type': 'map',
        'x-kubernetes-list-map-keys': ['type'],
        items: {
          type: 'object',
          description: 'One condition, in the standard Kubernetes shape (metav1.Condition).',
          required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
          properties: {
            type: str('The condition: Ready, Progressing or Degraded.', {
              maxLength: 316,
              pattern:
                '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
            }),
            status: str('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
            observedGeneration: int('The metadata.generation the condition was set for.', {
              format: 'int64',
              minimum: 0,
            }),
            lastTransitionTime: str('When the status last changed.', { format: 'date-time' }),
            reason: str('Why, in one CamelCase word. Example: MinimumReplicasAvailable.', {
              maxLength: 1024,
              minLength: 1,
              pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
            }),
            message: str('Why, for humans.', { maxLength: 32768 }),
          },
        },
      },
    },
  };
}

/** The CRD object. */
export function crd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'fnmesh', 'app.kubernetes.io/part-of': 'fnmesh' },
    },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: LIST_KIND,
        plural: CRD_PLURAL,
        singular: CRD_SINGULAR,
        shortNames: [...CRD_SHORT_NAMES],
        categories: [...CRD_CATEGORIES],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            {
              name: 'Ready',
              type: 'integer',
              description: 'Replicas ready to take calls.',
              jsonPath: '.status.readyReplicas',
            },
            { name: 'Desired', type: 'integer', description: 'Replicas asked for.', jsonPath: '.spec.replicas' },
            {
              name: 'Status',
              type: 'string',
              description: 'The Ready condition.',
              jsonPath: '.status.conditions[?(@.type=="Ready")].status',
            },
            {
              name: 'Reason',
              type: 'string',
              description: 'Why the service is (not) ready.',
              jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
              priority: 1,
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description:
                'A FunctionService is a group of related functions run as long-lived replicas behind the fnmesh ' +
                'gateway: POST /v1/api/{namespace}/functions/{metadata.name}/{function} calls a function when its ' +
                'rule allows. The name is a DNS label (it becomes a NATS subject token). Fields that this schema does ' +
                "not define are refused by kubectl's default strict field validation (kubectl --validate=strict, " +
                'the fieldValidation=Strict API parameter) and dropped otherwise; they are never kept.',
              required: ['spec'],
              properties: {
                apiVersion: str(API_VERSION),
                kind: str(KIND),
                metadata: {
                  type: 'object',
                  properties: {
                    name: str(
                      'The service name: a DNS label (lowercase letters, digits and "-", at most 63 characters).',
                      { maxLength: 63, pattern: DNS_LABEL.source },
                    ),
                  },
                },
                spec: specSchema(),
                status: statusSchema(),
              },
              'x-kubernetes-validations': [
                {
                  rule: "size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
                  message: `metadata.name ${NAME_HELP}`,
                  messageExpression: `'metadata.name "' + self.metadata.name + '" ${NAME_HELP}'`,
                },
              ],
            },
          },
        },
      ],
    },
  };
}

const HEADER =
  '# GENERATED by crds/generate.ts (`npm run generate`); do not edit by hand: crds/generate.test.ts fails when\n' +
  '# this file and the generator disagree. Install with `kubectl apply -f crds/`.\n';

/** The CRD as YAML text, exactly as committed. */
export function render(): string {
  return HEADER + YAML.stringify(crd(), { lineWidth: 0 });
}

/**
 * The crds/ folder of the checkout: this file's folder when run from the sources, or ../../crds from its
 * compiled copy in dist/crds/.
 */
function crdsFolder(): string {
  const parent = path.dirname(__dirname);
  return path.basename(parent) === 'dist' ? path.join(path.dirname(parent), 'crds') : __dirname;
}

/** Where the CRD is written, relative to the checkout: crds/, and the chart's crds/ (Helm installs it from there). */
export const CRD_OUTPUTS = [path.join('crds', CRD_FILE), path.join('charts', 'fnmesh', 'crds', CRD_FILE)];

/**
 * `node dist/crds/generate.js [--check]`: rewrites the YAML (in crds/ and the chart's copy), or with --check
 * exits 1 when either is out of date.
 */
function main(argv: string[]): number {
  const root = path.dirname(crdsFolder());
  const text = render();
  let stale = 0;
  for (const file of CRD_OUTPUTS) {
    const output = path.join(root, file);
    if (!argv.includes('--check')) writeFileSync(output, text);
    else if ((existsSync(output) ? readFileSync(output, 'utf8') : '') !== text) {
      console.error(`${file} is out of date: run npm run generate`);
      stale++;
    }
  }
  return stale > 0 ? 1 : 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
