/**
 * One client connection: protocol handling (CONNECT, SUB/UNSUB, PUB/HPUB, PING/PONG), authentication and
 * permissions, the server's keep-alive pings, a coalescing outbound buffer with a slow-consumer limit, and
 * flow control: a producer whose messages pile up at a congested subscriber stops being read until that
 * subscriber drains (as nats-server stalls fast producers instead of cutting their consumers).
 */
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger';
import { ParseError, Parser, type ParserHandler } from './parser';
import type { JwtAccount } from './jwt-auth';
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
  /** A wildcard subscription overlapping the subscriber's deny list: each message is checked on delivery. */
  filtered?: boolean;
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
  /** Outbound bytes pending at a subscriber above which its producers are paused. */
  readonly stallHighWater: number;
  /** Longest a producer stays paused for one congested subscriber before it is read again. */
  readonly stallMaxMs: number;
  infoLine(clientId: number, clientIp: string | undefined, nonce: string | undefined): string;
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
  jwt?: unknown;
  sig?: unknown;
}

/** nats-server prunes expired reply subjects once it tracks more than this many. */
const MAX_TRACKED_REPLIES = 10_000;

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
  private account: JwtAccount | undefined;
  /** Subscriptions allowed (-1 unlimited) and the largest payload (from the user's and account's limits). */
  private maxSubs = -1;
  /** allow_responses: reply subjects of received messages -> when received and how often answered. */
  private replies: Map<string, { t: number; n: number }> | undefined;
  private pruneAt = MAX_TRACKED_REPLIES;
  private expiryTimer: NodeJS.Timeout | undefined;
  /** Set while our socket holds more than the high-water mark: producers sending to us get paused. */
  congested = false;
  private readonly stalled = new Set<ClientConnection>();
  private pausedBy = 0;
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
    /** The nonce sent in INFO (JWT auth). */
    private readonly nonce?: string,
    /** Whether INFO was already written (TLS: sent in clear before the handshake). */
    private readonly infoSent = false,
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
    socket.on('drain', () => this.relieve());
    if (!this.infoSent) this.writeRaw(this.ctx.infoLine(this.id, socket.remoteAddress, this.nonce));
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
      const result: AuthResult = this.ctx.auth.authenticate(opts, this.nonce, this.socket.remoteAddress);
      if (!result.ok) {
        this.log.debug('authorization violation', {
          user: typeof opts.user === 'string' ? opts.user : undefined,
          reason: result.reason,
        });
        this.fail('Authorization Violation');
        return;
      }
      if (result.account) {
        const acc = result.account;
        if (acc.maxConnections !== -1 && acc.connections >= acc.maxConnections) {
          this.log.debug('account connection limit reached', { account: acc.name, max: acc.maxConnections });
          this.fail('maximum account active connections exceeded');
          return;
        }
        acc.connections++;
        this.account = acc;
      }
      this.authenticated = true;
      this.permissions = result.permissions;
      if (this.permissions?.responses) this.replies = new Map();
      if (result.limits) {
        this.maxSubs = result.limits.subs;
        const pay = result.limits.payload;
        if (pay !== -1 && pay < this.parser.maxPayload) this.parser.maxPayload = pay;
      }
      if (result.expiresAt !== undefined) this.expireAt(result.expiresAt);
      this.parser.requireConnect = false;
      if (this.authTimer) clearTimeout(this.authTimer);
      this.log.debug('client authenticated', { identity: result.identity });
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
    if (this.pedantic && !isValidLiteralSubject(subject)) {
      this.sendErr('Invalid Publish Subject');
      return;
    }
    const perms = this.permissions;
    if (perms?.restrictsPublish && !perms.canPublish(subject) && !this.mayReply(subject)) {
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
    const perms = this.permissions;
    if (perms?.restrictsSubscribe && !perms.canSubscribe(subject, queue)) {
      this.sendErr(
        queue === undefined
          ? `Permissions Violation for Subscription to "${subject}"`
          : `Permissions Violation for Subscription to "${subject}" using queue "${queue}"`,
      );
      return;
    }
    if (!this.subs.has(sid)) {
      if (this.maxSubs !== -1 && this.subs.size >= this.maxSubs) {
        this.sendErr('maximum subscriptions exceeded');
        return;
      }
      const sub: Subscription = { subject, queue, sid, conn: this, max: 0, delivered: 0, closed: false };
      if (perms?.restrictsSubscribe && perms.needsDeliveryFilter(subject)) sub.filtered = true;
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
    if (sub.filtered && !this.permissions!.canReceive(subject)) return false;
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
    if (this.replies && reply !== undefined) this.trackReply(reply);
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
    if (this.socket.writableLength > this.ctx.stallHighWater) this.congested = true;
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
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.account) this.account.connections--;
    this.relieve();
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

  // ---- flow control ----

  /** Pauses reading from a producer whose messages are piling up here, until we drain (or a time limit). */
  stall(producer: ClientConnection): void {
    if (producer === this || this.stalled.has(producer) || producer.closed) return;
    this.stalled.add(producer);
    producer.pause();
    const timer = setTimeout(() => {
      if (this.stalled.delete(producer)) producer.resume();
    }, this.ctx.stallMaxMs);
    timer.unref();
  }

  private pause(): void {
    if (this.pausedBy++ === 0) this.socket.pause();
  }

  private resume(): void {
    if (this.pausedBy > 0 && --this.pausedBy === 0 && !this.closed) this.socket.resume();
  }

  /** Our socket drained (or we closed): let the producers we paused go on. */
  private relieve(): void {
    this.congested = false;
    if (this.stalled.size === 0) return;
    const list = [...this.stalled];
    this.stalled.clear();
    for (const p of list) p.resume();
  }

  // ---- permissions state ----

  /** allow_responses: one more reply to a reply subject this connection received, within max and ttl. */
  private mayReply(subject: string): boolean {
    const replies = this.replies;
    if (!replies) return false;
    const r = replies.get(subject);
    if (!r) return false;
    const limits = this.permissions!.responses!;
    r.n++;
    if (limits.ttlMs > 0 && Date.now() - r.t > limits.ttlMs) {
      replies.delete(subject);
      return false;
    }
    // the last reply allowed: forget the subject now (a later one is refused either way)
    if (limits.max > 0 && r.n >= limits.max) replies.delete(subject);
    return true;
  }

  private trackReply(reply: string): void {
    const replies = this.replies!;
    replies.set(reply, { t: Date.now(), n: 0 });
    if (replies.size <= this.pruneAt) return;
    // as nats-server: drop the expired entries (used-up ones are dropped on use); the next prune waits
    // until the map has doubled, so that pruning stays a small cost per message
    const ttl = this.permissions!.responses!.ttlMs;
    const now = Date.now();
    if (ttl > 0) for (const [k, v] of replies) if (now - v.t > ttl) replies.delete(k);
    this.pruneAt = Math.max(MAX_TRACKED_REPLIES, replies.size * 2);
  }

  /** Closes the connection when its credentials expire, as nats-server does. */
  private expireAt(at: number): void {
    const delay = Math.max(0, at - Date.now());
    // timers hold at most ~24.8 days; re-arm for longer credentials
    const step = Math.min(delay, 2 ** 31 - 1);
    this.expiryTimer = setTimeout(() => {
      if (Date.now() >= at) this.fail('User Authentication Expired');
      else this.expireAt(at);
    }, step);
    this.expiryTimer.unref();
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
