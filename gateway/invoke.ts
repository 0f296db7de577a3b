/**
 * One NATS request to a function, with the error mapping every caller of it shares (HTTP calls,
 * internal calls and func rules): no responders → 503 at once, timeout → 504, disconnected → 503.
 */
import type { Msg, MsgHdrs, NatsConnection } from '@nats-io/nats-core';
import { errors as natsErrors } from '@nats-io/nats-core';
import { FnmeshError, decodeReply, encodeCallHeaders, type CallMeta } from '../common';

export interface Target {
  namespace: string;
  service: string;
  function: string;
}

export const NOT_CONNECTED_MESSAGE = 'the gateway is not connected to NATS; retrying';
export const CONNECTION_LOST_MESSAGE = 'the gateway lost its NATS connection during the call (the function may or may not have run); retrying';

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
      return new FnmeshError('unavailable', `no ready replica of ${svc} is subscribed`);
    }
    if (e instanceof natsErrors.TimeoutError) {
      return new FnmeshError('deadline_exceeded', `the call to ${svc}.${target.function} did not finish within ${timeoutMs} ms`);
    }
  }
  for (const e of chain) {
    if (
      e instanceof natsErrors.ClosedConnectionError ||
      e instanceof natsErrors.DrainingConnectionError ||
      e instanceof natsErrors.ConnectionError
    ) {
      return new FnmeshError('unavailable', NOT_CONNECTED_MESSAGE);
    }
    if (e instanceof natsErrors.PermissionViolationError) {
      return new FnmeshError('internal', `NATS refused the gateway permission to call ${svc}`);
    }
  }
  return new FnmeshError('internal', `the NATS request to ${svc}.${target.function} failed`);
}

export interface Connection {
  nc: NatsConnection;
  /** False while NATS is disconnected (calls then fail at once with 503). */
  connected(): boolean;
  /**
   * Rejects when the connection drops. Requests race it: nats.js buffers a request published while the
   * socket is already dead (before the disconnect is noticed), and it would otherwise wait out its deadline.
   */
  lost?(): Promise<never>;
}

/** Sends one request; resolves with the raw reply message or rejects with a FnmeshError. */
export async function requestRaw(conn: Connection, subject: string, target: Target, payload: Uint8Array, meta: CallMeta): Promise<Msg> {
  const timeoutMs = Math.floor(meta.timeoutMs);
  if (timeoutMs < 1) throw new FnmeshError('deadline_exceeded', `the call to ${target.namespace}/${target.service}.${target.function} had no time left before its deadline`);
  if (!conn.connected() || conn.nc.isClosed() || conn.nc.isDraining()) throw new FnmeshError('unavailable', NOT_CONNECTED_MESSAGE);
  const headers: MsgHdrs = encodeCallHeaders(meta);
  try {
    const request = conn.nc.request(subject, payload, { timeout: timeoutMs, headers });
    return await (conn.lost ? Promise.race([request, conn.lost()]) : request);
  } catch (err) {
    throw mapRequestError(err, target, timeoutMs);
  }
}

/** Sends one request and decodes the reply: resolves with the result bytes, rejects with a FnmeshError. */
export async function invoke(conn: Connection, subject: string, target: Target, payload: Uint8Array, meta: CallMeta): Promise<Uint8Array> {
  const msg = await requestRaw(conn, subject, target, payload, meta);
  const reply = decodeReply(msg.data, msg.headers);
  if (!reply.ok) throw reply.error;
  return reply.body;
}
