import { isValidSubject, subjectMatches } from './subject';
import { Sublist } from './sublist';

interface Sub {
  subject: string;
  queue?: string;
  id: string;
}

const sub = (id: string, subject: string, queue?: string): Sub => ({ id, subject, queue });
const ids = (subs: Sub[]): string[] => subs.map((s) => s.id).sort();

describe('Sublist', () => {
  it('matches literal subjects, * and >', () => {
    const list = new Sublist<Sub>();
    const all = [
      sub('lit', 'foo.bar'),
      sub('star', 'foo.*'),
      sub('gt', 'foo.>'),
      sub('root', '>'),
      sub('mid', '*.bar'),
      sub('deep', 'foo.*.baz'),
    ];
    all.forEach((s) => list.insert(s));
    expect(ids(list.match('foo.bar').psubs)).toEqual(['gt', 'lit', 'mid', 'root', 'star']);
    expect(ids(list.match('foo.x').psubs)).toEqual(['gt', 'root', 'star']);
    expect(ids(list.match('foo.x.baz').psubs)).toEqual(['deep', 'gt', 'root']);
    expect(ids(list.match('foo').psubs)).toEqual(['root']);
    expect(ids(list.match('bar').psubs)).toEqual(['root']);
    expect(list.size).toBe(6);
  });

  it('groups queue subscribers by queue name across wildcard nodes', () => {
    const list = new Sublist<Sub>();
    [
      sub('a1', 'fnmesh.call.ns.svc.*', 'g'),
      sub('a2', 'fnmesh.call.ns.svc.*', 'g'),
      sub('a3', 'fnmesh.call.ns.svc.fn', 'g'),
      sub('b1', 'fnmesh.call.>', 'h'),
      sub('p', 'fnmesh.call.ns.svc.fn'),
    ].forEach((s) => list.insert(s));
    const r = list.match('fnmesh.call.ns.svc.fn');
    expect(ids(r.psubs)).toEqual(['p']);
    expect(r.qsubs.map(ids).sort()).toEqual([['a1', 'a2', 'a3'], ['b1']]);
  });

  it('invalidates cached results on insert and remove', () => {
    const list = new Sublist<Sub>();
    const a = sub('a', 'x.*');
    expect(list.match('x.y').psubs).toEqual([]);
    list.insert(a);
    expect(ids(list.match('x.y').psubs)).toEqual(['a']);
    const b = sub('b', 'x.y', 'q');
    list.insert(b);
    expect(list.match('x.y').qsubs.map(ids)).toEqual([['b']]);
    expect(list.remove(a)).toBe(true);
    expect(list.remove(a)).toBe(false);
    expect(list.match('x.y').psubs).toEqual([]);
    list.removeAll([b]);
    expect(list.match('x.y').qsubs).toEqual([]);
    expect(list.size).toBe(0);
  });

  it('prunes empty branches so that matching after churn stays correct', () => {
    const list = new Sublist<Sub>();
    for (let i = 0; i < 100; i++) {
      const s = sub(`s${i}`, `a.b${i}.>`);
      list.insert(s);
      list.remove(s);
    }
    list.insert(sub('keep', 'a.*.c'));
    expect(ids(list.match('a.b7.c').psubs)).toEqual(['keep']);
    expect(list.size).toBe(1);
  });
});

describe('subjects', () => {
  it.each([
    ['foo', true],
    ['foo.bar.*', true],
    ['foo.>', true],
    ['a*.b', true],
    ['a.b>', true],
    ['', false],
    ['a..b', false],
    ['.a', false],
    ['a.', false],
    ['>.a', false],
    ['a b', false],
  ])('isValidSubject(%j) is %s', (s, ok) => expect(isValidSubject(s)).toBe(ok));

  it.each([
    ['foo.>', 'foo.bar', true],
    ['foo.>', 'foo', false],
    ['foo.*', 'foo.bar', true],
    ['foo.*', 'foo.bar.baz', false],
    ['foo.>', 'foo.*', true],
    ['foo.bar', 'foo.*', false],
    ['>', 'anything.at.all', true],
    ['fnmesh.gw.ns.svc.>', 'fnmesh.gw.ns.other.x.y.z', false],
  ])('subjectMatches(%j, %j) is %s', (p, s, ok) => expect(subjectMatches(p, s)).toBe(ok));
});
