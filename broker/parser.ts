/**
 * Incremental parser for the client side of the NATS protocol: a state machine fed with TCP chunks of any
 * size. A control line is found with a native newline search and split into arguments by a byte loop;
 * op names are matched case-insensitively byte by byte; payloads are zero-copy slices of the chunk when
 * they arrive whole, and are concatenated once when they are split across chunks.
 */

/** Why parsing stopped; the connection maps each kind to what nats-server answers. */
export type ParseErrorKind =
  | 'unknown-op' // -ERR 'Unknown Protocol Operation', close
  | 'bad-args' // close without a message (nats-server logs the parse error)
  | 'max-control-line' // -ERR 'maximum control line exceeded', close
  | 'max-payload' // -ERR 'Maximum Payload Violation', close
  | 'auth' // -ERR 'Authorization Violation', close (an op other than CONNECT before authentication)
  | 'client-err'; // the client sent -ERR: close

export class ParseError extends Error {
  constructor(
    readonly kind: ParseErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'ParseError';
  }
}

export interface ParserHandler {
  onConnect(json: string): void;
  /** `payload` is the message body; for HPUB it holds the header block (first `headerSize` bytes) and body. */
  onPub(subject: string, reply: string | undefined, headerSize: number, payload: Buffer): void;
  onSub(subject: string, queue: string | undefined, sid: string): void;
  onUnsub(sid: string, max: number | undefined): void;
  onPing(): void;
  onPong(): void;
  /** INFO and +OK from a client are accepted and ignored by nats-server. */
  onIgnored?(op: string): void;
}

export interface ParserOptions {
  maxPayload: number;
  /**
   * nats-server's max_control_line (4096): the longest arguments of one op (the line after the op name and
   * its separator), CONNECT included, as nats-server 2.9 checks it.
   */
  maxControlLine?: number;
}

const CR = 13;
const LF = 10;
const SPACE = 32;
const TAB = 9;
/** The longest op name and separator ("CONNECT "): a partial line longer than the limit plus this is refused. */
const MAX_OP_PREFIX = 8;

const enum State {
  Line,
  Payload,
}

export class Parser {
  /** When true, any op other than CONNECT is an authorization violation (auth is configured). */
  requireConnect = false;
  /** Whether HPUB is allowed (the client's CONNECT said headers: true). */
  headers = false;
  maxPayload: number;
  /** Set by the owner when the connection closes: parsing stops at the next op boundary. */
  stopped = false;

  private readonly maxControlLine: number;
  private state = State.Line;
  private pendingLine: Buffer | undefined;
  private pendingParts: Buffer[] = [];
  private pendingBytes = 0;
  // the publish being read
  private pubSubject = '';
  private pubReply: string | undefined;
  private pubHeaderSize = 0;
  private pubSize = 0;
  private readonly args: number[] = [];

  constructor(
    private readonly handler: ParserHandler,
    options: ParserOptions,
  ) {
    this.maxPayload = options.maxPayload;
    this.maxControlLine = options.maxControlLine ?? 4096;
  }

  /** Parses a chunk; throws ParseError on a protocol error (the connection must then close). */
  feed(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len && !this.stopped) {
      if (this.state === State.Line) {
        const lf = chunk.indexOf(LF, pos);
        if (lf < 0) {
          const rest = chunk.subarray(pos);
          this.pendingLine = this.pendingLine ? Buffer.concat([this.pendingLine, rest]) : Buffer.from(rest);
          this.checkPendingLine();
          return;
        }
        if (this.pendingLine) {
          const line = Buffer.concat([this.pendingLine, chunk.subarray(pos, lf)]);
          this.pendingLine = undefined;
          this.processLine(line, 0, line.length);
        } else {
          this.processLine(chunk, pos, lf);
        }
        pos = lf + 1;
      } else {
        const need = this.pubSize + 2;
        if (this.pendingBytes === 0 && len - pos >= need) {
          // the whole payload (and its CRLF) is in this chunk: zero-copy slice
          const end = pos + this.pubSize;
          if (chunk[end] !== CR || chunk[end + 1] !== LF)
            throw new ParseError('unknown-op', 'payload not followed by CRLF');
          this.state = State.Line;
          this.handler.onPub(this.pubSubject, this.pubReply, this.pubHeaderSize, chunk.subarray(pos, end));
          pos = end + 2;
          continue;
        }
        const take = Math.min(need - this.pendingBytes, len - pos);
        this.pendingParts.push(chunk.subarray(pos, pos + take));
        this.pendingBytes += take;
        pos += take;
        if (this.pendingBytes < need) return;
        const whole = Buffer.concat(this.pendingParts, need);
        this.pendingParts = [];
        this.pendingBytes = 0;
        if (whole[need - 2] !== CR || whole[need - 1] !== LF)
          throw new ParseError('unknown-op', 'payload not followed by CRLF');
        this.state = State.Line;
        this.handler.onPub(this.pubSubject, this.pubReply, this.pubHeaderSize, whole.subarray(0, this.pubSize));
      }
    }
  }

  private checkPendingLine(): void {
    // a line still incomplete: its arguments cannot fit once it grows past the limit plus the op name
    if (this.pendingLine!.length > this.maxControlLine + MAX_OP_PREFIX + 2)
      throw new ParseError('max-control-line', 'maximum control line exceeded');
  }

  /** One control line: bytes [start, end) of buf, end at the LF (an optional CR before it is dropped). */
  private processLine(buf: Buffer, start: number, end: number): void {
    if (end > start && buf[end - 1] === CR) end--;
    // op name
    let i = start;
    while (i < end && buf[i] !== SPACE && buf[i] !== TAB) i++;
    const opLen = i - start;
    const hasArgs = i < end;
    // as nats-server: while authentication is pending, a line that does not start with C is a violation
    if (this.requireConnect && (up(buf[start]) !== 0x43 || end === start))
      throw new ParseError('auth', 'operation before CONNECT');
    const op = opCode(buf, start, opLen);
    if (op === Op.Unknown) throw new ParseError('unknown-op', 'unknown protocol operation');
    if (this.requireConnect && op !== Op.Connect) throw new ParseError('auth', 'operation before CONNECT');
    let argStart = i;
    while (argStart < end && (buf[argStart] === SPACE || buf[argStart] === TAB)) argStart++;
    if (end - argStart > this.maxControlLine) throw new ParseError('max-control-line', 'maximum control line exceeded');
    switch (op) {
      case Op.Ping:
        this.handler.onPing();
        return;
      case Op.Pong:
        this.handler.onPong();
        return;
      case Op.Ok:
        this.handler.onIgnored?.('+OK');
        return;
      case Op.Err:
        throw new ParseError('client-err', 'client sent -ERR');
      case Op.Info:
        if (!hasArgs) throw new ParseError('unknown-op', 'INFO without arguments');
        this.handler.onIgnored?.('INFO');
        return;
      case Op.Connect: {
        if (!hasArgs) throw new ParseError('unknown-op', 'CONNECT without arguments');
        this.handler.onConnect(buf.toString('utf8', i + 1, end));
        return;
      }
      default:
        break;
    }
    // ops with space-separated arguments
    if (!hasArgs) throw new ParseError('unknown-op', 'missing arguments');
    const args = this.splitArgs(buf, i, end);
    const n = args.length / 2;
    const arg = (k: number): string => buf.toString('latin1', args[2 * k]!, args[2 * k + 1]!);
    switch (op) {
      case Op.Pub: {
        if (n !== 2 && n !== 3) throw new ParseError('bad-args', 'PUB needs subject [reply] size');
        const size = parseSize(buf, args[2 * (n - 1)]!, args[2 * (n - 1) + 1]!);
        if (size < 0) throw new ParseError('bad-args', 'PUB size is not a number');
        if (size > this.maxPayload) throw new ParseError('max-payload', 'Maximum Payload Violation');
        this.startPayload(arg(0), n === 3 ? arg(1) : undefined, 0, size);
        return;
      }
      case Op.Hpub: {
        if (!this.headers) throw new ParseError('bad-args', 'HPUB without headers support');
        if (n !== 3 && n !== 4) throw new ParseError('bad-args', 'HPUB needs subject [reply] header-size size');
        const hdr = parseSize(buf, args[2 * (n - 2)]!, args[2 * (n - 2) + 1]!);
        const size = parseSize(buf, args[2 * (n - 1)]!, args[2 * (n - 1) + 1]!);
        if (hdr < 0 || size < 0 || hdr > size) throw new ParseError('bad-args', 'bad HPUB sizes');
        if (size > this.maxPayload) throw new ParseError('max-payload', 'Maximum Payload Violation');
        this.startPayload(arg(0), n === 4 ? arg(1) : undefined, hdr, size);
        return;
      }
      case Op.Sub: {
        if (n !== 2 && n !== 3) throw new ParseError('bad-args', 'SUB needs subject [queue] sid');
        this.handler.onSub(arg(0), n === 3 ? arg(1) : undefined, arg(n - 1));
        return;
      }
      case Op.Unsub: {
        if (n !== 1 && n !== 2) throw new ParseError('bad-args', 'UNSUB needs sid [max]');
        let max: number | undefined;
        if (n === 2) {
          max = parseSize(buf, args[2]!, args[3]!);
          if (max < 0) throw new ParseError('bad-args', 'UNSUB max is not a number');
        }
        this.handler.onUnsub(arg(0), max);
        return;
      }
      default:
        throw new ParseError('unknown-op', 'unknown protocol operation');
    }
  }

  private startPayload(subject: string, reply: string | undefined, headerSize: number, size: number): void {
    this.pubSubject = subject;
    this.pubReply = reply;
    this.pubHeaderSize = headerSize;
    this.pubSize = size;
    this.state = State.Payload;
  }

  /** Fills `this.args` with [start, end) pairs of the whitespace-separated arguments in [from, end). */
  private splitArgs(buf: Buffer, from: number, end: number): number[] {
    const args = this.args;
    args.length = 0;
    let s = -1;
    for (let i = from; i < end; i++) {
      const b = buf[i];
      if (b === SPACE || b === TAB) {
        if (s >= 0) {
          args.push(s, i);
          s = -1;
        }
      } else if (s < 0) s = i;
    }
    if (s >= 0) args.push(s, end);
    return args;
  }
}

const enum Op {
  Unknown,
  Pub,
  Hpub,
  Sub,
  Unsub,
  Ping,
  Pong,
  Connect,
  Info,
  Ok,
  Err,
}

/** Upper-cases an ASCII letter (other bytes pass unchanged except for bit 5, which no op name relies on). */
function up(b: number | undefined): number {
  return b === undefined ? 0 : b >= 97 && b <= 122 ? b - 32 : b;
}

function is(buf: Buffer, start: number, word: string): boolean {
  for (let k = 0; k < word.length; k++) if (up(buf[start + k]) !== word.charCodeAt(k)) return false;
  return true;
}

function opCode(buf: Buffer, start: number, len: number): Op {
  switch (len) {
    case 3:
      if (is(buf, start, 'PUB')) return Op.Pub;
      if (is(buf, start, 'SUB')) return Op.Sub;
      if (is(buf, start, '+OK')) return Op.Ok;
      return Op.Unknown;
    case 4:
      if (is(buf, start, 'PING')) return Op.Ping;
      if (is(buf, start, 'PONG')) return Op.Pong;
      if (is(buf, start, 'HPUB')) return Op.Hpub;
      if (is(buf, start, 'INFO')) return Op.Info;
      if (is(buf, start, '-ERR')) return Op.Err;
      return Op.Unknown;
    case 5:
      return is(buf, start, 'UNSUB') ? Op.Unsub : Op.Unknown;
    case 7:
      return is(buf, start, 'CONNECT') ? Op.Connect : Op.Unknown;
    default:
      return Op.Unknown;
  }
}

/** Decimal size as nats-server's parseSize: digits only, at most 9 of them, else -1. */
function parseSize(buf: Buffer, start: number, end: number): number {
  const len = end - start;
  if (len === 0 || len > 9) return -1;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
