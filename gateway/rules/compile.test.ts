import { ConfigError } from '../../common/errors';
import type { Rule } from '../../common/rule';
import { compileRule, DENY_ALL, type Decision, type FuncCaller, type RuleInput } from './index';

const WHERE = 'default/greeter: spec.functions[hello].rule';
const ctx = { namespace: 'default' };

const noFunc: FuncCaller = () => Promise.reject(new Error('func must not be called'));

const input = (over: Partial<RuleInput> = {}): RuleInput => ({
  auth: {
    sub: 'u1',
    role: 'user',
    roles: ['user', 'editor'],
    level: 3,
    levelStr: '3',
    admin: false,
    verified: true,
    joined: '2020-01-01T00:00:00Z',
    joinedMs: Date.parse('2020-01-01T00:00:00Z'),
    mixed: ['user', 7],
    nothing: null,
  },
  params: { id: 'u1', items: [{ id: 'a' }, { id: 'b' }], count: 5, when: '2030-06-01', tags: ['x', 'y'] },
  caller: 'shop/cart',
  ...over,
});

function evalSync(rule: Rule, inp: RuleInput = input()): Decision {
  const c = compileRule(rule, WHERE, ctx);
  expect(c.usesFunc).toBe(false);
  const d = c.evaluate(inp, noFunc);
  expect(d).not.toBeInstanceOf(Promise);
  return d as Decision;
}

const m = (type: string, op: string, f1: unknown, f2: unknown): Rule =>
  ({ rule: 'match', type, eval: op, f1, f2 }) as unknown as Rule;

describe('simple rules', () => {
  it('allow allows and deny denies', () => {
    expect(evalSync({ rule: 'allow' }).allow).toBe(true);
    const d = evalSync({ rule: 'deny' });
    expect(d.allow).toBe(false);
    expect(d.reason).toMatch(/deny/);
  });
  it('authenticated allows with verified claims and denies without', () => {
    expect(evalSync({ rule: 'authenticated' }).allow).toBe(true);
    const d = evalSync({ rule: 'authenticated' }, { params: {} });
    expect(d.allow).toBe(false);
    expect(d.reason).toMatch(/no verified bearer token/);
  });
  it('DENY_ALL denies everything with a reason', () => {
    const d = DENY_ALL.evaluate(input(), noFunc) as Decision;
    expect(d.allow).toBe(false);
    expect(d.reason).toMatch(/default denies/);
    expect(DENY_ALL.usesFunc).toBe(false);
  });
  it('keeps the source rule', () => {
    const r: Rule = { rule: 'allow' };
    expect(compileRule(r, WHERE, ctx).source).toBe(r);
  });
});

describe('match: allowing and denying per type and operator', () => {
  const now = Date.now();
  const past = new Date(now - 3600_000).toISOString();
  const future = new Date(now + 3600_000).toISOString();
  const cases: [string, Rule, boolean][] = [
    // string
    ['string == literal (true)', m('string', '==', 'args.auth.role', 'user'), true],
    ['string == literal (false)', m('string', '==', 'args.auth.role', 'admin'), false],
    ['string == variable vs variable', m('string', '==', 'args.auth.sub', 'args.params.id'), true],
    ['string != (true)', m('string', '!=', 'args.auth.role', 'admin'), true],
    ['string != (false)', m('string', '!=', 'args.auth.role', 'user'), false],
    ['string in literal array (true)', m('string', 'in', 'args.auth.role', ['admin', 'user']), true],
    ['string in literal array (false)', m('string', 'in', 'args.auth.role', ['admin', 'root']), false],
    ['string notIn literal array (true)', m('string', 'notIn', 'args.auth.role', ['admin']), true],
    ['string notIn literal array (false)', m('string', 'notIn', 'args.auth.role', ['user']), false],
    ['string in variable array (true)', m('string', 'in', 'editor', 'args.auth.roles'), true],
    ['string in variable array (false)', m('string', 'in', 'admin', 'args.auth.roles'), false],
    ['string notIn variable array (true)', m('string', 'notIn', 'admin', 'args.auth.roles'), true],
    ['string notIn variable array (false)', m('string', 'notIn', 'user', 'args.auth.roles'), false],
    ['string in array mixing literals and variables', m('string', 'in', 'u1', ['nobody', 'args.params.id']), true],
    ['array index path', m('string', '==', 'args.params.items.1.id', 'b'), true],
    ['args.caller', m('string', '==', 'args.caller', 'shop/cart'), true],
    // number
    ['number == (true)', m('number', '==', 'args.auth.level', 3), true],
    ['number == (false)', m('number', '==', 'args.auth.level', 4), false],
    ['number != (true)', m('number', '!=', 'args.auth.level', 4), true],
    ['number != (false)', m('number', '!=', 'args.auth.level', 3), false],
    ['number < (true)', m('number', '<', 'args.auth.level', 4), true],
    ['number < (false)', m('number', '<', 'args.auth.level', 3), false],
    ['number <= (true)', m('number', '<=', 'args.auth.level', 3), true],
    ['number <= (false)', m('number', '<=', 'args.auth.level', 2), false],
    ['number > (true)', m('number', '>', 'args.params.count', 'args.auth.level'), true],
    ['number > (false)', m('number', '>', 'args.auth.level', 3), false],
    ['number >= (true)', m('number', '>=', 'args.auth.level', 3), true],
    ['number >= (false)', m('number', '>=', 'args.auth.level', 4), false],
    ['number in (true)', m('number', 'in', 'args.auth.level', [1, 2, 3]), true],
    ['number in (false)', m('number', 'in', 'args.auth.level', [1, 2]), false],
    ['number notIn (true)', m('number', 'notIn', 'args.auth.level', [1, 2]), true],
    ['number notIn (false)', m('number', 'notIn', 'args.auth.level', [3]), false],
    // bool
    ['bool == (true)', m('bool', '==', 'args.auth.verified', true), true],
    ['bool == (false)', m('bool', '==', 'args.auth.admin', true), false],
    ['bool != (true)', m('bool', '!=', 'args.auth.admin', true), true],
    ['bool != (false)', m('bool', '!=', 'args.auth.verified', true), false],
    // utils.exists
    ['utils.exists of a present claim', m('bool', '==', 'utils.exists(args.auth.sub)', true), true],
    ['utils.exists of an absent claim', m('bool', '==', 'utils.exists(args.auth.email)', true), false],
    ['utils.exists of a null claim is false', m('bool', '==', 'utils.exists(args.auth.nothing)', false), true],
    ['utils.exists of a deep path', m('bool', '==', 'utils.exists(args.params.items.0.id)', true), true],
    ['utils.exists of a missing index', m('bool', '==', 'utils.exists(args.params.items.5.id)', true), false],
    // dates
    ['date ISO < utils.now() (true)', m('date', '<', 'args.auth.joined', 'utils.now()'), true],
    ['date ISO > utils.now() (false)', m('date', '>', 'args.auth.joined', 'utils.now()'), false],
    ['date epoch ms == ISO same instant', m('date', '==', 'args.auth.joinedMs', '2020-01-01T00:00:00Z'), true],
    [
      'date ISO with offset == ISO Z same instant',
      m('date', '==', '2020-01-01T01:00:00+01:00', 'args.auth.joined'),
      true,
    ],
    ['date != (true)', m('date', '!=', 'args.auth.joined', '2021-01-01'), true],
    ['date != (false)', m('date', '!=', 'args.auth.joined', '2020-01-01'), false],
    ['date-only param > now', m('date', '>', 'args.params.when', 'utils.now()'), true],
    ['date <= literal ISO (true)', m('date', '<=', 'utils.now()', future), true],
    ['date <= literal ISO (false)', m('date', '<=', 'utils.now()', past), false],
    ['date >= epoch literal', m('date', '>=', 'args.auth.joined', 1577836800000), true],
    [
      'date in literal list (instants compared)',
      m('date', 'in', 'args.auth.joined', ['2019-01-01', '2020-01-01T00:00:00.000Z']),
      true,
    ],
    ['date notIn literal list', m('date', 'notIn', 'args.auth.joined', ['2019-01-01']), true],
    // literal on both sides
    ['two literals', m('number', '<', 1, 2), true],
  ];
  it.each(cases)('%s', (_name, rule, expected) => {
    const d = evalSync(rule);
    expect(d.allow).toBe(expected);
    if (!expected) expect(d.reason).toMatch(/^match failed: /);
  });

  it('explains a failed comparison with the variable, its value and the literal', () => {
    expect(evalSync(m('string', '==', 'args.auth.role', 'admin')).reason).toBe(
      'match failed: args.auth.role ("user") == "admin" is false',
    );
    expect(evalSync(m('string', 'in', 'args.auth.role', ['admin'])).reason).toBe(
      'match failed: args.auth.role ("user") in ["admin"] is false',
    );
  });
});

describe('match: missing data and wrong types never allow', () => {
  const noAuth: RuleInput = { params: {} };
  const cases: [string, Rule, RuleInput, RegExp][] = [
    ['== with an absent claim', m('string', '==', 'args.auth.email', 'x'), input(), /args\.auth\.email is not set/],
    ['!= with an absent claim', m('string', '!=', 'args.auth.email', 'x'), input(), /args\.auth\.email is not set/],
    [
      'notIn with an absent claim',
      m('string', 'notIn', 'args.auth.email', ['x']),
      input(),
      /args\.auth\.email is not set/,
    ],
    [
      'notIn with an absent list',
      m('string', 'notIn', 'x', 'args.auth.blocked'),
      input(),
      /args\.auth\.blocked is not set/,
    ],
    ['in with an absent list', m('string', 'in', 'x', 'args.auth.blocked'), input(), /args\.auth\.blocked is not set/],
    ['a null claim', m('string', '!=', 'args.auth.nothing', 'x'), input(), /args\.auth\.nothing is not set/],
    ['no token at all', m('string', '!=', 'args.auth.sub', 'x'), noAuth, /args\.auth\.sub is not set/],
    [
      'args.caller on an external call',
      m('string', '!=', 'args.caller', 'x'),
      { ...input(), caller: undefined },
      /args\.caller is not set/,
    ],
    ['a path through a string', m('string', '!=', 'args.auth.role.x', 'x'), input(), /not set/],
    [
      'a numeric string for type number',
      m('number', '==', 'args.auth.levelStr', 3),
      input(),
      /args\.auth\.levelStr is the string "3", not a number/,
    ],
    ['a number for type string', m('string', '!=', 'args.auth.level', 'x'), input(), /is the number 3, not a string/],
    ['a string for type bool', m('bool', '!=', 'args.auth.role', true), input(), /not a bool/],
    ['an unparsable date', m('date', '<', 'args.auth.role', 'utils.now()'), input(), /not a date/],
    [
      'a zone-less date-time',
      m('date', '<', 'args.params.t', 'utils.now()'),
      { params: { t: '2020-01-01T00:00:00' } },
      /not a date/,
    ],
    [
      'an impossible calendar date',
      m('date', '<', 'args.params.t', 'utils.now()'),
      { params: { t: '2020-02-30' } },
      /not a date/,
    ],
    [
      'in with a non-array variable',
      m('string', 'in', 'x', 'args.auth.role'),
      input(),
      /args\.auth\.role is the string "user", not an array/,
    ],
    [
      'in with a wrongly typed element',
      m('string', 'in', 'user', 'args.auth.mixed'),
      input(),
      /element 1 of args\.auth\.mixed is the number 7/,
    ],
    [
      'notIn with a wrongly typed element',
      m('string', 'notIn', 'x', 'args.auth.mixed'),
      input(),
      /element 1 of args\.auth\.mixed/,
    ],
    ['an inherited property', m('bool', '==', 'utils.exists(args.params.constructor)', true), input(), /false/],
    ['an index on an object', m('string', '!=', 'args.params.items.x', 'x'), input(), /not set/],
  ];
  it.each(cases)('%s denies with a reason', (_name, rule, inp, reason) => {
    const d = evalSync(rule, inp);
    expect(d.allow).toBe(false);
    expect(d.reason).toMatch(reason);
  });
});

describe('and / or', () => {
  const T = m('string', '==', 'args.auth.role', 'user');
  const F = m('string', '==', 'args.auth.role', 'admin');
  const cases: [string, Rule, boolean][] = [
    ['and of all true', { rule: 'and', clauses: [T, T, { rule: 'allow' }] }, true],
    ['and with one false', { rule: 'and', clauses: [T, F, T] }, false],
    ['or with one true', { rule: 'or', clauses: [F, F, T] }, true],
    ['or of all false', { rule: 'or', clauses: [F, { rule: 'deny' }] }, false],
    ['or inside and', { rule: 'and', clauses: [T, { rule: 'or', clauses: [F, T] }] }, true],
    [
      'and inside or inside and, deep',
      {
        rule: 'and',
        clauses: [T, { rule: 'or', clauses: [F, { rule: 'and', clauses: [T, { rule: 'or', clauses: [F, F] }] }] }],
      },
      false,
    ],
  ];
  it.each(cases)('%s', (_n, rule, expected) => {
    expect(evalSync(rule).allow).toBe(expected);
  });

  it('names the denying clause of an and', () => {
    expect(evalSync({ rule: 'and', clauses: [T, F] }).reason).toBe(
      'clauses[1]: match failed: args.auth.role ("user") == "admin" is false',
    );
  });
  it('lists every reason when an or denies', () => {
    const r = evalSync({ rule: 'or', clauses: [F, { rule: 'deny' }] }).reason;
    expect(r).toMatch(/^no clause of or allowed: clauses\[0\]: match failed.*; clauses\[1\]: the rule is deny$/);
  });
  it('handles very deep nesting', () => {
    let rule: Rule = T;
    for (let k = 0; k < 200; k++) rule = { rule: k % 2 ? 'and' : 'or', clauses: [rule] };
    expect(evalSync(rule).allow).toBe(true);
  });
});

describe('func', () => {
  const ack = (answer: unknown): jest.Mock => jest.fn(() => Promise.resolve(answer));
  const funcRule: Rule = { rule: 'func', service: 'policy', func: 'check' };

  it('calls the function with the target and the call context and allows on {ack: true}', async () => {
    const call = ack({ ack: true });
    const c = compileRule(funcRule, WHERE, ctx);
    expect(c.usesFunc).toBe(true);
    const inp = input();
    const d = await c.evaluate(inp, call);
    expect(d.allow).toBe(true);
    expect(call).toHaveBeenCalledWith(
      { namespace: 'default', service: 'policy', function: 'check' },
      { auth: inp.auth, params: inp.params, caller: inp.caller },
    );
  });
  it('uses an explicit namespace', async () => {
    const call = ack({ ack: true });
    await compileRule({ ...funcRule, namespace: 'policies' }, WHERE, ctx).evaluate(input(), call);
    expect(call.mock.calls[0][0]).toEqual({ namespace: 'policies', service: 'policy', function: 'check' });
  });
  const answers: [string, unknown, boolean, RegExp][] = [
    ['ack true with extra keys allows', { ack: true, reason: 'ok' }, true, /acknowledged/],
    [
      'ack false denies',
      { ack: false, reason: 'nope' },
      false,
      /answered \{"ack":false,"reason":"nope"\}, not \{"ack": true\}/,
    ],
    ['ack "true" (a string) denies', { ack: 'true' }, false, /not \{"ack": true\}/],
    ['true alone denies', true, false, /answered true/],
    ['null denies', null, false, /answered null/],
    ['an array denies', [{ ack: true }], false, /answered/],
  ];
  it.each(answers)('%s', async (_n, answer, expected, reason) => {
    const d = await compileRule(funcRule, WHERE, ctx).evaluate(input(), ack(answer));
    expect(d.allow).toBe(expected);
    expect(d.reason).toMatch(reason);
  });
  it('denies with the error message when the call throws (async or sync)', async () => {
    const rejecting: FuncCaller = () => Promise.reject(new Error('no ready replica'));
    const throwing: FuncCaller = () => {
      throw new Error('boom');
    };
    const c = compileRule(funcRule, WHERE, ctx);
    expect(await c.evaluate(input(), rejecting)).toEqual({
      allow: false,
      reason: 'func default/policy.check failed: no ready replica',
    });
    expect(await c.evaluate(input(), throwing)).toEqual({
      allow: false,
      reason: 'func default/policy.check failed: boom',
    });
  });

  it('does not call a func when an earlier or later sync clause of an and denies', async () => {
    const call = ack({ ack: true });
    const rule: Rule = { rule: 'and', clauses: [funcRule, { rule: 'authenticated' }] };
    const d = await compileRule(rule, WHERE, ctx).evaluate({ params: {} }, call);
    expect(d.allow).toBe(false);
    expect(call).not.toHaveBeenCalled();
  });
  it('does not call a func when a sync clause of an or allows, and answers synchronously', () => {
    const call = ack({ ack: false });
    const rule: Rule = { rule: 'or', clauses: [funcRule, { rule: 'authenticated' }] };
    const d = compileRule(rule, WHERE, ctx).evaluate(input(), call);
    expect(d).toEqual({ allow: true, reason: 'or: clauses[1] allowed' });
    expect(call).not.toHaveBeenCalled();
  });
  it('stops at the first func that decides', async () => {
    const call = jest.fn<Promise<unknown>, Parameters<FuncCaller>>((t) => Promise.resolve({ ack: t.function === 'a' }));
    const f = (fn: string): Rule => ({ rule: 'func', service: 'policy', func: fn });
    expect(
      (await compileRule({ rule: 'or', clauses: [f('a'), f('b')] }, WHERE, ctx).evaluate(input(), call)).allow,
    ).toBe(true);
    expect(call).toHaveBeenCalledTimes(1);
    call.mockClear();
    expect(
      (await compileRule({ rule: 'and', clauses: [f('b'), f('a')] }, WHERE, ctx).evaluate(input(), call)).allow,
    ).toBe(false);
    expect(call).toHaveBeenCalledTimes(1);
  });
  it('evaluates and inside or inside and with a func deep down', async () => {
    const call = jest.fn<Promise<unknown>, Parameters<FuncCaller>>(() => Promise.resolve({ ack: true }));
    const rule: Rule = {
      rule: 'and',
      clauses: [
        { rule: 'authenticated' },
        {
          rule: 'or',
          clauses: [
            m('string', '==', 'args.auth.role', 'admin'),
            { rule: 'and', clauses: [funcRule, m('number', '>=', 'args.auth.level', 3)] },
          ],
        },
      ],
    };
    const c = compileRule(rule, WHERE, ctx);
    expect(c.usesFunc).toBe(true);
    expect((await c.evaluate(input(), call)).allow).toBe(true);
    expect(call).toHaveBeenCalledTimes(1);
    // The sync sibling of the func denies: the func is skipped and the reason goes through every level.
    call.mockClear();
    const d = await c.evaluate(input({ auth: { role: 'user', level: 1 } }), call);
    expect(d.allow).toBe(false);
    expect(call).not.toHaveBeenCalled();
    expect(d.reason).toMatch(
      /^clauses\[1\]: no clause of or allowed: clauses\[0\]: .*; clauses\[1\]: clauses\[1\]: match failed: args\.auth\.level \(1\) >= 3 is false$/,
    );
    // func denies deep down
    call.mockImplementation(() => Promise.resolve({ ack: false }));
    const d2 = await c.evaluate(input(), call);
    expect(d2.allow).toBe(false);
    expect(d2.reason).toMatch(/clauses\[1\]: clauses\[0\]: func default\/policy\.check answered/);
  });
});

describe('compile-time errors name the location and the fix', () => {
  const cases: [string, Rule, string, RegExp][] = [
    ['typo in args', m('string', '==', 'arg.auth.id', 'x'), '.f1', /"arg\.auth\.id".*did you mean "args\.auth\.id"/],
    ['capitalised Args', m('string', '==', 'x', 'Args.auth.id'), '.f2', /did you mean "args\.auth\.id"/],
    [
      'typo in a root',
      m('string', '==', 'args.auht.id', 'x'),
      '.f1',
      /"args\.auht" is not a root; did you mean args\.auth\?/,
    ],
    ['params without s', m('string', '==', 'args.param.x', 'x'), '.f1', /did you mean args\.params\?/],
    [
      'unknown root',
      m('string', '==', 'args.headers.x', 'x'),
      '.f1',
      /the roots are args\.auth.*args\.params.*args\.caller/,
    ],
    ['bare args', m('string', '==', 'args', 'x'), '.f1', /name a root/],
    ['empty path segment', m('string', '==', 'args.auth..x', 'x'), '.f1', /empty/],
    ['fields of args.caller', m('string', '==', 'args.caller.ns', 'x'), '.f1', /args\.caller is a string/],
    [
      'typo in a util',
      m('bool', '==', 'utils.exist(args.auth.x)', true),
      '.f1',
      /did you mean "utils\.exists\(args\.auth\.x\)"/,
    ],
    [
      'typo inside exists',
      m('bool', '==', 'utils.exists(arg.auth.x)', true),
      '.f1',
      /did you mean "utils\.exists\(args\.auth\.x\)"/,
    ],
    [
      'typo inside exists with an unknown root',
      m('bool', '==', 'utils.exists(arg.x)', true),
      '.f1',
      /did you mean "utils\.exists\(args\.x\)"\? utils\.exists takes a variable/,
    ],
    [
      'typo in a util with an unknown root',
      m('bool', '==', 'utils.exist(args.x)', true),
      '.f1',
      /did you mean "utils\.exists\(args\.x\)"/,
    ],
    [
      'a variable with leading whitespace',
      m('string', '==', ' args.auth.id', 'x'),
      '.f1',
      /remove the leading whitespace.*did you mean "args\.auth\.id"/,
    ],
    [
      'typo in utils',
      m('bool', '==', 'util.exists(args.auth.x)', true),
      '.f1',
      /did you mean "utils\.exists\(args\.auth\.x\)"/,
    ],
    ['unknown util', m('date', '<', 'utils.today()', 'utils.now()'), '.f1', /utils\.today is not a function/],
    [
      'utils without call',
      m('date', '<', 'utils.now', 'utils.now()'),
      '.f1',
      /utils\.exists\(<variable>\) and utils\.now\(\)/,
    ],
    [
      'typo inside an in list',
      m('string', 'in', 'args.auth.role', ['admin', 'agrs.auth.x']),
      '.f2',
      /did you mean "args\.auth\.x"/,
    ],
    [
      '< on bool',
      m('bool', '<', 'args.auth.admin', true),
      '.eval',
      /"<" is not allowed for type "bool": type bool supports == !=/,
    ],
    ['in on bool', m('bool', 'in', 'args.auth.admin', [true]), '.eval', /not allowed for type "bool"/],
    [
      '> on string',
      m('string', '>', 'args.auth.role', 'a'),
      '.eval',
      /type string supports == != in notIn; to order values use type number or date/,
    ],
    [
      'in with a literal string',
      m('string', 'in', 'args.auth.role', 'admin'),
      '.f2',
      /"in" needs a list: write an array/,
    ],
    ['notIn with utils.now()', m('date', 'notIn', 'args.auth.joined', 'utils.now()'), '.f2', /needs a list/],
    ['array with ==', m('string', '==', 'args.auth.role', ['a']), '.f2', /use eval "in"/],
    ['array as f1', m('string', 'in', ['a'], ['a']), '.f1', /f1 must be a single value/],
    ['nested array', m('string', 'in', 'args.auth.role', [['a']]), '.f2[0]', /nested arrays/],
    [
      'numeric string for type number',
      m('number', '==', 'args.auth.level', '3'),
      '.f2',
      /write it as a JSON number: 3/,
    ],
    [
      'number in a string list',
      m('string', 'in', 'args.auth.role', ['a', 5]),
      '.f2[1]',
      /write it as a JSON string: "5"/,
    ],
    ['string for bool', m('bool', '==', 'args.auth.admin', 'true'), '.f2', /write it as a JSON boolean: true/],
    ['bad date literal', m('date', '<', 'args.auth.joined', 'tomorrow'), '.f2', /ISO-8601/],
    ['zone-less date-time literal', m('date', '<', 'args.auth.joined', '2020-01-01T00:00:00'), '.f2', /with a zone/],
    ['null literal', m('string', '==', 'args.auth.role', null), '.f2', /utils\.exists/],
    ['exists with type string', m('string', '==', 'utils.exists(args.auth.x)', 'true'), '.f1', /use type "bool"/],
    ['now with type number', m('number', '<', 'utils.now()', 5), '.f1', /use type "date"/],
    ['bad type', m('text', '==', 'a', 'b'), '.type', /use one of string, number, bool, date/],
    ['bad operator', m('string', '===', 'a', 'b'), '.eval', /use one of ==/],
    ['unknown rule', { rule: 'maybe' } as unknown as Rule, '.rule', /use one of allow, deny/],
    ['empty and', { rule: 'and', clauses: [] }, '.clauses', /non-empty list/],
    ['bad func service', { rule: 'func', service: 'Policy', func: 'check' }, '.service', /DNS label/],
    ['bad func name', { rule: 'func', service: 'policy', func: 'a.b' }, '.func', /letters, digits/],
    ['bad func namespace', { rule: 'func', service: 'p', func: 'f', namespace: 'A_B' }, '.namespace', /DNS label/],
    [
      'an error deep inside and/or',
      {
        rule: 'or',
        clauses: [
          { rule: 'allow' },
          { rule: 'and', clauses: [{ rule: 'deny' }, m('string', '==', 'args.auht.id', 'x')] },
        ],
      },
      '.clauses[1].clauses[1].f1',
      /did you mean args\.auth\?/,
    ],
  ];
  it.each(cases)('%s', (_n, rule, at, message) => {
    let err: unknown;
    try {
      compileRule(rule, WHERE, ctx);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const msg = (err as Error).message;
    expect(msg.startsWith(`${WHERE}${at}: `)).toBe(true);
    expect(msg).toMatch(message);
  });

  it('keeps ordinary literals that are not close to args/utils', () => {
    for (const lit of ['admin', 'api.example.com', 'user@example.com', 'args', 'a.b']) {
      if (lit === 'args') continue; // bare "args" is a variable error, tested above
      expect(() => compileRule(m('string', '==', 'args.auth.role', lit), WHERE, ctx)).not.toThrow();
    }
  });
});

describe('ruleNeedsAuth (401 instead of 403 for anonymous callers)', () => {
  const { ruleNeedsAuth } = jest.requireActual<typeof import('./compile')>('./compile');
  it.each([
    [{ rule: 'authenticated' }, true],
    [{ rule: 'allow' }, false],
    [{ rule: 'deny' }, false],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.auth.role', f2: 'admin' }, true],
    [{ rule: 'match', type: 'bool', eval: '==', f1: 'utils.exists(args.auth.sub)', f2: true }, true],
    [{ rule: 'match', type: 'string', eval: 'in', f1: 'args.params.x', f2: ['a', 'args.auth.sub'] }, true],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.caller', f2: 'default/a' }, false],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.params.author', f2: 'x' }, false],
    [{ rule: 'or', clauses: [{ rule: 'deny' }, { rule: 'and', clauses: [{ rule: 'authenticated' }] }] }, true],
    [{ rule: 'func', service: 'authz', func: 'check' }, false],
  ] as const)('%j → %s', (rule, expected) => {
    expect(ruleNeedsAuth(rule as never)).toBe(expected);
  });
});

describe('ruleReadsParams (repeated keys in params are refused for such rules)', () => {
  const { ruleReadsParams } = jest.requireActual<typeof import('./compile')>('./compile');
  it.each([
    [{ rule: 'allow' }, false],
    [{ rule: 'authenticated' }, false],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.params.user', f2: 'alice' }, true],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.auth.sub', f2: 'args.params.owner' }, true],
    [{ rule: 'match', type: 'bool', eval: '==', f1: 'utils.exists(args.params.x)', f2: true }, true],
    [{ rule: 'match', type: 'string', eval: 'in', f1: 'args.auth.sub', f2: ['a', 'args.params.x'] }, true],
    [{ rule: 'match', type: 'string', eval: '==', f1: 'args.caller', f2: 'default/a' }, false],
    [
      {
        rule: 'and',
        clauses: [{ rule: 'allow' }, { rule: 'or', clauses: [{ rule: 'func', service: 'a', func: 'b' }] }],
      },
      true,
    ],
    [{ rule: 'func', service: 'authz', func: 'check' }, true],
  ] as const)('%j → %s', (rule, expected) => {
    expect(ruleReadsParams(rule as never)).toBe(expected);
    expect(compileRule(rule as never, 'r', { namespace: 'default' }).readsParams).toBe(expected);
  });
});
