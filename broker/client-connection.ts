/**
 * One client connection: protocol handling (CONNECT, SUB/UNSUB, PUB/HPUB, PING/PONG), authentication and
 * permissions, the server's keep-alive pings, and a coalescing outbound buffer with a slow-consumer limit.
 */
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger';
import { ParseError, Parser, type ParserHandler } from './parser';
import type { AuthResult, Authenticator, Permissions } from './permissions';
import { isValidLiteralSubject, isValidSubject } from './subject';
import type { Sublist } from './sublist';

export interface Subscription {
  readonly subject: string;
  readonly queue?: string;
  readonly sid: string;
  readonly conn: ClientConnection;
  /** Auto-unsubscribe after this many messages (0 = never). */
  max: number;
  delivered: number;
  closed: boolean;
}

/** What a connection needs from its server. */
export interface ConnectionContext {
  readonly sublist: Sublist<Subscription>;
  readonly auth: Authenticator;
  readonly logger: Logger;
  readonly maxPayload: number;
  readonly maxPendingBytes: number;
  readonly pingIntervalMs: number;
  readonly maxPingsOut: number;
  readonly authTimeoutMs: number;
  infoLine(clientId: number, clientIp: string | undefined): string;
  route(from: ClientConnection, subject: string, reply: string | undefined, headerSize: number, payload: Buffer): void;
  /** Asks for a flush of this connection's outbound buffer (at the end of the current read, or soon). */
  markDirty(conn: ClientConnection): void;
  /** Flushes every connection with queued bytes (end of one client's read). */
  flushPending(): void;
  onClosed(conn: ClientConnection, reason: string): void;
  countOut(bytes: number): void;
  countSlowConsumer(): void;
}

const CRLF = '\r\n';
const MIN_CHUNK = 64 * 1024;
const EAGER_FLUSH_BYTES = 64 * 1024;
const NO_RESPONDERS_HEADER = 'NATS/1.0 503\r\n\r\n';

interface ConnectOptions {
  verbose?: unknown;
  pedantic?: unknown;
  echo?: unknown;
  headers?: unknown;
  no_responders?: unknown;
  name?: unknown;
  auth_token?: unknown;
  user?: unknown;
  pass?: unknown;
}

export class ClientConnection implements ParserHandler {
  closed = false;
  name: string | undefined;
  /** nats-server's defaults before and without a CONNECT: verbose and pedantic on, echo on. */
  verbose = true;
  pedantic = true;
  echo = true;
  headers = false;
  noResponders = false;

  private readonly parser: Parser;
  private readonly subs = new Map<string, Subscription>();
  private readonly log: Logger;
  private authenticated: boolean;
  private permissions: Permissions | undefined;
  private pingsOut = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private authTimer: NodeJS.Timeout | undefined;
  // outbound: bytes [outStart, outEnd) of outBuf are queued, not yet handed to the socket
  private outBuf: Buffer = Buffer.allocUnsafe(0);
  private outStart = 0;
  private outEnd = 0;
  private dirty = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly ctx: ConnectionContext,
  ) {
    this.log = ctx.logger.child({ cid: id });
    this.authenticated = !ctx.auth.required;
    this.parser = new Parser(this, { maxPayload: ctx.maxPayload });
    this.parser.requireConnect = ctx.auth.required;
  }

  start(): void {
    const socket = this.socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug('client socket error', { error: err.message }));
    socket.on('close', () => this.close('client closed the connection'));
    this.writeRaw(this.ctx.infoLine(this.id, socket.remoteAddress));
    if (!this.authenticated) {
      this.authTimer = setTimeout(() => {
        if (!this.authenticated) this.fail('Authentication Timeout');
      }, this.ctx.authTimeoutMs);
      this.authTimer.unref();
    }
    if (this.ctx.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => this.ping(), this.ctx.pingIntervalMs);
      this.pingTimer.unref();
    }
    this.log.debug('client connected', { remote: `${socket.remoteAddress}:${socket.remotePort}` });
  }

  get subscriptionCount(): number {
    return this.subs.size;
  }

  // ---- parser callbacks ----

  onConnect(json: string): void {
    let opts: ConnectOptions;
    try {
      const parsed: unknown = JSON.parse(json);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      opts = parsed as ConnectOptions;
    } catch {
      this.log.debug('invalid CONNECT json');
      this.close('invalid CONNECT');
      return;
    }
    if (!this.authenticated) {
      const result: AuthResult = this.ctx.auth.authenticate(opts);
      if (!result.ok) {
        this.log.debug('authorization violation', { user: typeof opts.user === 'string' ? opts.user : undefined });
        this.fail('Authorization Violation');
        return;
      }
      this.authenticated = true;
      this.permissions = result.permissions;
      this.parser.requireConnect = false;
      if (this.authTimer) clearTimeout(this.authTimer);
    }
    this.verbose = opts.verbose === undefined ? this.verbose : opts.verbose === true;
    this.pedantic = opts.pedantic === undefined ? this.pedantic : opts.pedantic === true;
    this.echo = opts.echo === undefined ? this.echo : opts.echo === true;
    this.headers = opts.headers === true;
    this.noResponders = opts.no_responders === true;
    this.parser.headers = this.headers;
    if (typeof opts.name === 'string') this.name = opts.name;
    if (this.noResponders && !this.headers) {
      this.fail('no responders requires headers support');
      return;
    }
    this.log.debug('client CONNECT', { name: this.name, headers: this.headers, echo: this.echo });
    if (this.verbose) this.writeLine('+OK');
  }

  onPub(subject: string, reply: string | undefined, headerSize: number, payload: Buffer): void {
    if (this.pedantic && !isValidLiteralSubject(subject)) this.sendErr('Invalid Publish Subject');
    const pub = this.permissions?.publish;
    if (pub && !pub.allows(subject)) {
      this.sendErr(`Permissions Violation for Publish to "${subject}"`);
      return;
    }
    if (this.verbose) this.writeLine('+OK');
    this.ctx.route(this, subject, reply, headerSize, payload);
  }

  onSub(subject: string, queue: string | undefined, sid: string): void {
    if (!isValidSubject(subject)) {
      this.sendErr('Invalid Subject');
      return;
    }
    const allow = this.permissions?.subscribe;
    if (allow && !allow.allows(subject)) {
      this.sendErr(
        queue === undefined
          ? `Permissions Violation for Subscription to "${subject}"`
          : `Permissions Violation for Subscription to "${subject}" using queue "${queue}"`,
      );
      return;
    }
    if (!this.subs.has(sid)) {
      const sub: Subscription = { subject, queue, sid, conn: this, max: 0, delivered: 0, closed: false };
      this.subs.set(sid, sub);
      this.ctx.sublist.insert(sub);
    }
    if (this.verbose) this.writeLine('+OK');
  }

  onUnsub(sid: string, max: number | undefined): void {
    const sub = this.subs.get(sid);
    if (sub) {
      if (max !== undefined && max > 0 && sub.delivered < max) sub.max = max;
      else this.removeSub(sub);
    }
    if (this.verbose) this.writeLine('+OK');
  }

  onPing(): void {
    this.writeLine('PONG');
  }

  onPong(): void {
    this.pingsOut = 0;
  }

  // ---- delivery ----

  /** Queues one message for a subscription of this connection; false if it was not delivered. */
  deliver(sub: Subscription, subject: string, reply: string | undefined, headerSize: number, payload: Buffer): boolean {
    if (sub.closed || this.closed) return false;
    sub.delivered++;
    if (sub.max > 0 && sub.delivered > sub.max) {
      this.removeSub(sub);
      return false;
    }
    let line: string;
    let body = payload;
    if (headerSize > 0 && this.headers) {
      line = `HMSG ${subject} ${sub.sid} ${reply === undefined ? '' : reply + ' '}${headerSize} ${payload.length}\r\n`;
    } else {
      // a client without header support gets the body only, as nats-server does
      if (headerSize > 0) body = payload.subarray(headerSize);
      line = `MSG ${subject} ${sub.sid} ${reply === undefined ? '' : reply + ' '}${body.length}\r\n`;
    }
    const size = line.length + body.length + 2;
    if (!this.reserve(size)) return false;
    this.outEnd += this.outBuf.write(line, this.outEnd, 'latin1');
    this.outEnd += body.copy(this.outBuf, this.outEnd);
    this.outBuf[this.outEnd++] = 13;
    this.outBuf[this.outEnd++] = 10;
    this.ctx.countOut(body.length);
    // a big backlog goes to the kernel now rather than waiting for the end of the I/O phase
    if (this.outEnd - this.outStart >= EAGER_FLUSH_BYTES) this.flush();
    else this.markDirty();
    if (sub.max > 0 && sub.delivered >= sub.max) this.removeSub(sub);
    return true;
  }

  /** The no-responders status that nats-server sends to a requester when nobody is subscribed. */
  sendNoResponders(reply: string): void {
    const own = this.ctx.sublist.match(reply, false).psubs.find((s) => s.conn === this && !s.closed);
    if (!own) return;
    this.writeRaw(`HMSG ${reply} ${own.sid} 16 16\r\n${NO_RESPONDERS_HEADER}\r\n`);
  }

  /** Hands queued bytes to the socket in one write (called by the server after each read). */
  flush(): void {
    this.dirty = false;
    if (this.outEnd === this.outStart || this.socket.destroyed) return;
    this.socket.write(this.outBuf.subarray(this.outStart, this.outEnd));
    this.outStart = this.outEnd;
    // the socket now owns that region; keep appending after it, or start a fresh chunk
    if (this.outBuf.length - this.outEnd < 4096) {
      this.outBuf = Buffer.allocUnsafe(0);
      this.outStart = this.outEnd = 0;
    }
  }

  // ---- lifecycle ----

  /** Closes the connection (idempotent): removes its subscriptions, flushes what it can, ends the socket. */
  close(reason: string, destroy = false): void {
    if (this.closed) return;
    this.closed = true;
    this.parser.stopped = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.authTimer) clearTimeout(this.authTimer);
    for (const s of this.subs.values()) s.closed = true;
    this.ctx.sublist.removeAll(this.subs.values());
    this.subs.clear();
    if (destroy) {
      this.socket.destroy();
    } else if (!this.socket.destroyed) {
      this.flush();
      this.socket.end();
      // do not wait for the peer: release the socket once our bytes are out
      this.socket.once('finish', () => this.socket.destroy());
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    this.log.debug('client closed', { reason, name: this.name });
    this.ctx.onClosed(this, reason);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      this.parser.feed(chunk);
      this.ctx.flushPending();
    } catch (err) {
      if (err instanceof ParseError) this.onParseError(err);
      else {
        this.log.error('broker: error while handling client data', { error: String(err) });
        this.close('internal error');
      }
    }
  }

  private onParseError(err: ParseError): void {
    this.log.debug('protocol error', { kind: err.kind, error: err.message });
    switch (err.kind) {
      case 'unknown-op':
        return this.fail('Unknown Protocol Operation');
      case 'max-control-line':
        return this.fail('maximum control line exceeded');
      case 'max-payload':
        return this.fail('Maximum Payload Violation');
      case 'auth':
        return this.fail('Authorization Violation');
      default:
        return this.close(`protocol error: ${err.message}`);
    }
  }

  private ping(): void {
    if (this.closed) return;
    if (this.pingsOut + 1 > this.ctx.maxPingsOut) {
      this.log.debug('stale connection');
      this.fail('Stale Connection');
      return;
    }
    this.pingsOut++;
    this.writeLine('PING');
  }

  private removeSub(sub: Subscription): void {
    if (sub.closed) return;
    sub.closed = true;
    this.subs.delete(sub.sid);
    this.ctx.sublist.remove(sub);
  }

  private sendErr(text: string): void {
    this.writeLine(`-ERR '${text}'`);
  }

  /** Sends -ERR and closes, as nats-server does for fatal errors. */
  private fail(text: string): void {
    this.sendErr(text);
    this.close(text);
  }

  /** Queues a protocol line; CRLF is appended. */
  private writeLine(text: string): void {
    this.writeRaw(text + CRLF);
  }

  /** Queues protocol bytes (a latin1 string) as they are. */
  private writeRaw(line: string): void {
    if (this.closed && this.socket.destroyed) return;
    if (!this.reserve(line.length)) return;
    this.outEnd += this.outBuf.write(line, this.outEnd, 'latin1');
    this.markDirty();
  }

  /** Makes room for `size` more outbound bytes, or closes the connection as a slow consumer. */
  private reserve(size: number): boolean {
    const queued = this.outEnd - this.outStart;
    if (queued + this.socket.writableLength + size > this.ctx.maxPendingBytes) {
      this.slowConsumer();
      return false;
    }
    if (this.outEnd + size <= this.outBuf.length) return true;
    const next = Buffer.allocUnsafe(Math.max(MIN_CHUNK, (queued + size) * 2));
    this.outBuf.copy(next, 0, this.outStart, this.outEnd);
    this.outBuf = next;
    this.outStart = 0;
    this.outEnd = queued;
    return true;
  }

  private slowConsumer(): void {
    if (this.closed) return;
    this.log.warn('slow consumer detected: pending bytes exceeded, closing', {
      name: this.name,
      maxPendingBytes: this.ctx.maxPendingBytes,
    });
    this.ctx.countSlowConsumer();
    // Like nats-server, drop the queued bytes and close at once: the peer is not reading, so an
    // -ERR would sit behind megabytes of undelivered data anyway.
    this.outStart = this.outEnd = 0;
    this.close('slow consumer', true);
  }

  private markDirty(): void {
    if (this.dirty) return;
    this.dirty = true;
    this.ctx.markDirty(this);
  }
}
