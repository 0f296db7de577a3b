/**
 * One NATS request to a function (one attempt of a call: resilient-call.ts makes the attempts), with the error
 * mapping every caller of it shares (HTTP calls, internal calls and func rules): no responders → 503 at once
 * (NoRespondersError, which is retried), timeout → 504, not connected (never sent: NotConnectedError, retried
 * once the connection is back) → 503, connection lost with the request in flight (ConnectionLostError: it may
 * have run) → 502.
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/nats-core';
import { createInbox, errors as natsErrors } from '@nats-io/nats-core';
import { FnmeshError, encodeCallHeaders, type CallMeta } from '../common';

export interface Target {
  namespace: string;
  service: string;
  function: string;
}

/** NATS answered that nobody is subscribed to the call's subject: no replica got it (retries tell it apart). */
export class NoRespondersError extends FnmeshError {
  constructor(target: Target) {
    super('unavailable', `no ready replica of ${target.namespace}/${target.service} is subscribed`);
  }
}

export const NOT_CONNECTED_MESSAGE =
  'the gateway is not connected to NATS (the call was not sent); check that the NATS servers are running and reachable from the gateway';

/** The gateway had no NATS connection: the request was never published (so it never ran). */
export class NotConnectedError extends FnmeshError {
  constructor() {
    super('unavailable', NOT_CONNECTED_MESSAGE);
  }
}

/**
 * The NATS connection dropped after the request was published and before its reply came: the function may
 * have run. Retried only for an idempotent function (a `reset` failure); an at-most-once call fails with it.
 */
export class ConnectionLostError extends FnmeshError {
  constructor(target: Target) {
    super(
      'function_failed',
      `the gateway lost its NATS connection while the call to ${target.namespace}/${target.service}.${target.function} was in flight: the function may or may not have run, and the gateway retries such calls only for a function whose retry.retryOn has "reset"; retry the call if running it twice is safe`,
    );
  }
}

function causes(err: unknown): unknown[] {
  const out: unknown[] = [];
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    out.push(e);
    e = e instanceof Error ? e.cause : undefined;
  }
  return out;
}

/** Maps a rejected `nc.request` to the FnmeshError the caller sees. */
export function mapRequestError(err: unknown, target: Target, timeoutMs: number): FnmeshError {
  const chain = causes(err);
  const svc = `${target.namespace}/${target.service}`;
  for (const e of chain) {
    if (e instanceof FnmeshError) return e;
    if (e instanceof natsErrors.NoRespondersError || (e instanceof natsErrors.RequestError && e.isNoResponders())) {
      return new NoRespondersError(target);
    }
    if (e instanceof natsErrors.TimeoutError) {
      return new FnmeshError(
        'deadline_exceeded',
        `the call to ${svc}.${target.function} did not finish within ${timeoutMs} ms`,
      );
    }
  }
  for (const e of chain) {
    if (
      e instanceof natsErrors.ClosedConnectionError ||
      e instanceof natsErrors.DrainingConnectionError ||
      e instanceof natsErrors.ConnectionError
    ) {
      return new NotConnectedError();
    }
    if (e instanceof natsErrors.PermissionViolationError) {
      return new FnmeshError('internal', `NATS refused the gateway permission to call ${svc}`);
    }
  }
  return new FnmeshError('internal', `the NATS request to ${svc}.${target.function} failed`);
}

export interface Connection {
  nc: NatsConnection;
  /** False while NATS is disconnected (calls then wait for the reconnect, bounded: retry-decision.ts reconnectWaitMs). */
  connected(): boolean;
  /** While disconnected: when the disconnect happened (performance.now()) and a promise resolved on reconnect. */
  disconnect?(): { since: number; reconnected: Promise<void> } | undefined;
  /**
   * Rejects when the connection drops. Requests race it: nats.js buffers a request published while the
   * socket is already dead (before the disconnect is noticed), and it would otherwise wait out its deadline.
   */
  lost?(): Promise<never>;
  /** The connection's inbox prefix (nats.js `inboxPrefix`): replies are received only below it. */
  inboxPrefix?: string;
}

interface Pending {
  resolve(msg: Msg): void;
  reject(err: FnmeshError): void;
  timer: NodeJS.Timeout;
  subject: string;
  target: Target;
  timeoutMs: number;
  /** Set while the publish waits in the batch. */
  payload: Uint8Array | undefined;
  headers: MsgHdrs | undefined;
  token: string;
}

/** A request failed by a connection loss: not sent while it waits in the batch, may have run once published. */
function lostOrNotSent(p: Pending): FnmeshError {
  return p.payload !== undefined ? new NotConnectedError() : new ConnectionLostError(p.target);
}

function noResponders(target: Target): FnmeshError {
  return new NoRespondersError(target);
}

function timedOut(target: Target, timeoutMs: number): FnmeshError {
  return new FnmeshError(
    'deadline_exceeded',
    `the call to ${target.namespace}/${target.service}.${target.function} did not finish within ${timeoutMs} ms`,
  );
}

/**
 * Request/reply over one wildcard inbox subscription (`<inbox prefix>.<nuid>.*`), replies matched by token. What
 * `nc.request()` does, without its per-request RequestOne (which builds a RequestError on every success),
 * promise race and per-request subscription bookkeeping.
 */
class RequestMux {
  private readonly prefix: string;
  private readonly pending = new Map<string, Pending>();
  private readonly sub: Subscription;
  private next = 0;
  /** Requests made during this event-loop turn, published together (one socket write instead of one each). */
  private batch: Pending[] = [];
  /** The connection's current `lost()` promise, and its error once it rejected. */
  private armed: Promise<never> | undefined;
  private armedError: FnmeshError | undefined;
  closed = false;

  get inFlight(): number {
    return this.pending.size;
  }

  /** The connection this mux's inbox is on (a credentials handover moves the Connection to another one). */
  readonly nc: NatsConnection;

  constructor(private readonly conn: Connection) {
    const nc = (this.nc = conn.nc);
    this.prefix = `${createInbox(conn.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => this.onMessage(err, msg) });
    const onClosed = (): void => {
      this.closed = true;
      this.failAll(lostOrNotSent);
    };
    this.sub.closed.then(onClosed, onClosed);
    // A publish the server refuses (permissions) fails the requests to that subject at once, as nc.request() does.
    void (async () => {
      for await (const s of nc.status()) {
        if (
          s.type !== 'error' ||
          !(s.error instanceof natsErrors.PermissionViolationError) ||
          s.error.operation !== 'publish'
        )
          continue;
        const refused = s.error;
        for (const [token, p] of this.pending) {
          if (p.subject !== refused.subject) continue;
          this.pending.delete(token);
          clearTimeout(p.timer);
          p.reject(mapRequestError(refused, p.target, p.timeoutMs));
        }
      }
    })().catch(() => undefined);
  }

  private onMessage(err: Error | null, msg: Msg): void {
    if (err) {
      this.failAll((p) => mapRequestError(err, p.target, p.timeoutMs));
      return;
    }
    const token = msg.subject.substring(this.prefix.length);
    const p = this.pending.get(token);
    if (p === undefined) return; // late reply after a timeout
    this.pending.delete(token);
    clearTimeout(p.timer);
    if (msg.data.length === 0 && msg.headers?.code === 503) p.reject(noResponders(p.target));
    else p.resolve(msg);
  }

  private failAll(error: (p: Pending) => FnmeshError): void {
    if (this.pending.size === 0) return;
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      clearTimeout(p.timer);
      p.reject(error(p));
    }
  }

  /** The error of a connection loss that happened since the last call, arming the watch for the next one. */
  private lostError(): FnmeshError | undefined {
    if (!this.conn.lost) return undefined;
    const current = this.conn.lost();
    if (current !== this.armed) {
      this.armed = current;
      this.armedError = undefined;
      current.catch(() => {
        if (this.armed !== current) return;
        this.armedError = new NotConnectedError();
        this.failAll(lostOrNotSent);
      });
    }
    return this.armedError;
  }

  request(subject: string, target: Target, payload: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<Msg> {
    const lost = this.lostError();
    if (lost) return Promise.reject(lost);
    const token = (this.next++).toString(36);
    return new Promise<Msg>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.pending.delete(token)) reject(timedOut(target, timeoutMs));
      }, timeoutMs);
      const p: Pending = { resolve, reject, timer, subject, target, timeoutMs, payload, headers, token };
      this.pending.set(token, p);
      if (this.batch.push(p) === 1) setImmediate(this.publishBatch);
    });
  }

  /**
   * nats.js writes to its socket once per microtask checkpoint, i.e. once per HTTP request handled; publishing
   * the requests of one event-loop turn together makes that one write for all of them.
   */
  private readonly publishBatch = (): void => {
    const batch = this.batch;
    this.batch = [];
    const nc = this.nc;
    for (const p of batch) {
      const { payload, headers } = p;
      p.payload = undefined;
      p.headers = undefined;
      if (this.pending.get(p.token) !== p) continue; // already failed (timeout, connection loss)
      try {
        nc.publish(p.subject, payload, { reply: this.prefix + p.token, headers });
      } catch (err) {
        this.pending.delete(p.token);
        clearTimeout(p.timer);
        p.reject(tooLargeForNats(err, nc, payload, headers) ?? mapRequestError(err, p.target, p.timeoutMs));
      }
    }
  };
}

/**
 * The 413 for a message nats.js refused as larger than the server's max_payload (params and headers
 * together), else undefined. The gateway's limits make this rare (limits.ts); it is never a 500.
 */
export function tooLargeForNats(
  err: unknown,
  nc: NatsConnection,
  payload: Uint8Array | undefined,
  headers: MsgHdrs | undefined,
): FnmeshError | undefined {
  const max = nc.info?.max_payload;
  if (!(err instanceof natsErrors.InvalidArgumentError) || max === undefined || payload === undefined) return undefined;
  const headerBytes = (headers as { encode?: () => Uint8Array } | undefined)?.encode?.().length ?? 0;
  if (payload.length + headerBytes <= max) return undefined;
  return new FnmeshError(
    'payload_too_large',
    `the call is too large for NATS: ${payload.length} bytes of params and ${headerBytes} bytes of headers, more than the NATS server's max_payload of ${max} bytes; send smaller params`,
  );
}

/** By NATS connection: after a handover, the previous connection's mux answers its requests while new ones go on. */
const muxes = new WeakMap<NatsConnection, RequestMux>();

/** Requests sent on `nc` that wait for their reply (a handover drains `nc` once none are left). */
export function requestsInFlight(nc: NatsConnection): number {
  return muxes.get(nc)?.inFlight ?? 0;
}

/** Sends one request; resolves with the raw reply message or rejects with a FnmeshError. */
export function requestRaw(
  conn: Connection,
  subject: string,
  target: Target,
  payload: Uint8Array,
  meta: CallMeta,
): Promise<Msg> {
  const timeoutMs = Math.floor(meta.timeoutMs);
  if (timeoutMs < 1)
    return Promise.reject(
      new FnmeshError(
        'deadline_exceeded',
        `the call to ${target.namespace}/${target.service}.${target.function} had no time left before its deadline`,
      ),
    );
  if (!conn.connected() || conn.nc.isClosed() || conn.nc.isDraining()) return Promise.reject(new NotConnectedError());
  let headers: MsgHdrs;
  try {
    headers = encodeCallHeaders(meta);
  } catch (err) {
    return Promise.reject(err);
  }
  const nc = conn.nc;
  let mux = muxes.get(nc);
  try {
    if (mux === undefined || mux.closed) muxes.set(nc, (mux = new RequestMux(conn)));
    return mux.request(subject, target, payload, headers, timeoutMs);
  } catch (err) {
    return Promise.reject(mapRequestError(err, target, timeoutMs));
  }
}
