import { ParseError, Parser, type ParserHandler } from './parser';

type Event = [string, ...unknown[]];

function collector(): { events: Event[]; handler: ParserHandler } {
  const events: Event[] = [];
  const handler: ParserHandler = {
    onConnect: (json) => events.push(['connect', json]),
    onPub: (subject, reply, hdr, payload) => events.push(['pub', subject, reply, hdr, payload.toString('latin1')]),
    onSub: (subject, queue, sid) => events.push(['sub', subject, queue, sid]),
    onUnsub: (sid, max) => events.push(['unsub', sid, max]),
    onPing: () => events.push(['ping']),
    onPong: () => events.push(['pong']),
    onIgnored: (op) => events.push(['ignored', op]),
  };
  return { events, handler };
}

const STREAM =
  'CONNECT {"verbose":false,"headers":true}\r\n' +
  'SUB foo.* 1\r\nSUB bar q 2\r\nPUB foo.a 5\r\nhello\r\nPUB foo.b _INBOX.x 0\r\n\r\n' +
  'HPUB h r 12 14\r\nNATS/1.0\r\n\r\nab\r\nUNSUB 1 3\r\nUNSUB 2\r\nPING\r\nPONG\r\n+OK\r\n' +
  'PUB bin 4\r\n\r\n\r\n\r\n';

const EXPECTED: Event[] = [
  ['connect', '{"verbose":false,"headers":true}'],
  ['sub', 'foo.*', undefined, '1'],
  ['sub', 'bar', 'q', '2'],
  ['pub', 'foo.a', undefined, 0, 'hello'],
  ['pub', 'foo.b', '_INBOX.x', 0, ''],
  ['pub', 'h', 'r', 12, 'NATS/1.0\r\n\r\nab'],
  ['unsub', '1', 3],
  ['unsub', '2', undefined],
  ['ping'],
  ['pong'],
  ['ignored', '+OK'],
  ['pub', 'bin', undefined, 0, '\r\n\r\n'],
];

function parser(handler: ParserHandler): Parser {
  const p = new Parser(handler, { maxPayload: 1024 });
  p.headers = true;
  return p;
}

describe('Parser', () => {
  it('parses many ops in one chunk', () => {
    const { events, handler } = collector();
    parser(handler).feed(Buffer.from(STREAM));
    expect(events).toEqual(EXPECTED);
  });

  it('parses the same stream fed byte by byte', () => {
    const { events, handler } = collector();
    const p = parser(handler);
    const buf = Buffer.from(STREAM);
    for (let i = 0; i < buf.length; i++) p.feed(buf.subarray(i, i + 1));
    expect(events).toEqual(EXPECTED);
  });

  it('parses the stream split at every possible point', () => {
    const buf = Buffer.from(STREAM);
    for (let cut = 1; cut < buf.length; cut++) {
      const { events, handler } = collector();
      const p = parser(handler);
      p.feed(buf.subarray(0, cut));
      p.feed(buf.subarray(cut));
      expect(events).toEqual(EXPECTED);
    }
  });

  it('accepts lower-case op names, tabs and bare LF line ends', () => {
    const { events, handler } = collector();
    parser(handler).feed(Buffer.from('sub\tfoo  7\npub foo 2\r\nhi\r\nPiNg\n'));
    expect(events).toEqual([['sub', 'foo', undefined, '7'], ['pub', 'foo', undefined, 0, 'hi'], ['ping']]);
  });

  it('hands out payloads as slices of the chunk when they arrive whole', () => {
    const chunk = Buffer.from('PUB a 3\r\nabc\r\n');
    let seen: Buffer | undefined;
    const p = new Parser(
      { ...collector().handler, onPub: (_s, _r, _h, payload) => (seen = payload) },
      { maxPayload: 10 },
    );
    p.feed(chunk);
    expect(seen?.buffer).toBe(chunk.buffer);
  });

  const errors: Array<[string, string, ParseError['kind']]> = [
    ['unknown op', 'FOO\r\n', 'unknown-op'],
    ['op without args', 'PUB\r\n', 'unknown-op'],
    ['MSG from a client', 'MSG a 1 1\r\nx\r\n', 'unknown-op'],
    ['payload without CRLF', 'PUB a 2\r\nabXY\r\n', 'unknown-op'],
    ['bad size', 'PUB a x\r\n', 'bad-args'],
    ['too many args', 'PUB a b c d\r\n', 'bad-args'],
    ['header size over total', 'HPUB a 14 12\r\n', 'bad-args'],
    ['too large', 'PUB a 2000\r\n', 'max-payload'],
    ['control line too long', 'PUB ' + 'a'.repeat(5000) + ' 1\r\n', 'max-control-line'],
    ['client -ERR', "-ERR 'x'\r\n", 'client-err'],
  ];
  it.each(errors)('rejects %s', (_name, input, kind) => {
    const p = parser(collector().handler);
    let caught: unknown;
    try {
      p.feed(Buffer.from(input));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ParseError);
    expect((caught as ParseError).kind).toBe(kind);
  });

  it('rejects a control line that never ends, even when it arrives in pieces', () => {
    const p = parser(collector().handler);
    expect(() => {
      for (let i = 0; i < 100; i++) p.feed(Buffer.from('SUB ' + 'x'.repeat(100)));
    }).toThrow(ParseError);
  });

  // measured on nats-server 2.9.10: arguments of 4096 bytes pass, 4097 are refused, for CONNECT as for SUB
  it.each([
    ['CONNECT', (n: number) => `CONNECT {"name":"${'a'.repeat(n - 11)}"}\r\n`],
    ['SUB', (n: number) => `SUB ${'a'.repeat(n - 2)} 1\r\n`],
  ])('limits the arguments of %s to 4096 bytes', (_op, line) => {
    const ok = parser(collector().handler);
    ok.feed(Buffer.from(line(4096)));
    const tooLong = parser(collector().handler);
    expect(() => tooLong.feed(Buffer.from(line(4097)))).toThrow(expect.objectContaining({ kind: 'max-control-line' }));
  });

  it('rejects a CONNECT line over the limit that arrives in pieces', () => {
    const p = parser(collector().handler);
    expect(() => {
      p.feed(Buffer.from('CONNECT {"name":"'));
      for (let i = 0; i < 50; i++) p.feed(Buffer.from('a'.repeat(100)));
    }).toThrow(expect.objectContaining({ kind: 'max-control-line' }));
  });

  it('rejects HPUB when the client did not announce headers', () => {
    const p = new Parser(collector().handler, { maxPayload: 100 });
    expect(() => p.feed(Buffer.from('HPUB a 12 12\r\n'))).toThrow(ParseError);
  });

  it('requires CONNECT first when authentication is on', () => {
    const { events, handler } = collector();
    const p = parser(handler);
    p.requireConnect = true;
    expect(() => p.feed(Buffer.from('PING\r\n'))).toThrow(expect.objectContaining({ kind: 'auth' }));
    const q = parser(handler);
    q.requireConnect = true;
    q.feed(Buffer.from('CONNECT {}\r\n'));
    expect(events).toEqual([['connect', '{}']]);
  });
});
