import { LineSplitter, Prefixer, formatPrefix } from './log-prefix';

describe('log prefixes', () => {
  it('pads labels and colours only when asked', () => {
    expect(formatPrefix('greeter-0 fn', 14, 0, false)).toBe('greeter-0 fn   |');
    expect(formatPrefix('a', 1, 1, true)).toBe('\u001b[33ma |\u001b[0m');
  });

  it('splits chunks into whole lines and flushes the rest', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('one\ntw');
    s.push('o\r\nthree');
    expect(lines).toEqual(['one', 'two']);
    s.flush();
    expect(lines).toEqual(['one', 'two', 'three']);
  });

  it('prefixes each line with a common width', () => {
    const out: string[] = [];
    const p = new Prefixer({ colour: false, write: (t) => out.push(t) });
    p.reserve('greeter-0 sc');
    const fn = p.splitter('text-1 fn', 'default/text');
    fn.push('hello\nworld\n');
    p.line('mesh', 'mesh', 'ready');
    expect(out).toEqual(['text-1 fn    | hello\n', 'text-1 fn    | world\n', 'mesh         | ready\n']);
  });
});
