/**
 * A nats.js authenticator over a `.creds` file. nats.js calls the authenticator for every CONNECT (the first
 * one and each reconnect) with the server's nonce; this one reads the file then, once per connect (so the
 * JWT and the seed always come from the same version of the file), and signs the nonce with the seed. A
 * rotated file is therefore used from the next reconnect on, without a restart (and nats-creds-reload.ts
 * hands the connection over to it before that, without a failed call). The first read happens when
 * the authenticator is made, so a missing, unreadable, malformed or expired file stops the process at start;
 * a later failed read keeps the last good credentials (and says so) rather than breaking reconnects.
 */
import type { Authenticator } from '@nats-io/nats-core';
import { encode as nkeysEncode } from '@nats-io/nkeys';
import type { Logger } from './logger';
import { NATS_CLIENT_ENV } from './nats-client-settings';
import { checkCredsDates, type ParsedCreds } from './nats-identity/creds-format';
import { readCredsFile } from './nats-identity/creds-file';
import { nativeKeyPair } from './nats-identity/native-keys';

const FIX = `point ${NATS_CLIENT_ENV.creds} at current credentials (the operator rotates them before they expire)`;

export interface CredsFileAuthenticator {
  authenticator: Authenticator;
  /** The credentials the last CONNECT used (or the start-up read). */
  current(): ParsedCreds;
}

export function credsFileAuthenticator(
  file: string,
  logger: Logger,
  now: () => Date = () => new Date(),
): CredsFileAuthenticator {
  const read = (): ParsedCreds => readCredsFile(file, NATS_CLIENT_ENV.creds);
  let current = read();
  checkCredsDates(current, now(), `the NATS credentials file ${file} (${NATS_CLIENT_ENV.creds})`, FIX);
  const encoder = new TextEncoder();
  const authenticator: Authenticator = (nonce?: string) => {
    try {
      const next = read();
      if (next.jwt !== current.jwt) {
        logger.info('using the rotated NATS credentials', {
          file,
          user: next.publicKey,
          expires: next.expiresAt?.toISOString() ?? 'never',
        });
      }
      current = next;
    } catch (err) {
      logger.warn('cannot read the NATS credentials file again; connecting with the last good credentials', {
        file,
        error: (err as Error).message,
      });
    }
    // What nats.js's jwtAuthenticator answers, signed natively (nkeys' JavaScript ed25519 costs ~10 ms a CONNECT).
    const kp = nativeKeyPair(encoder.encode(current.seed));
    const sig = nonce ? nkeysEncode(kp.sign(encoder.encode(nonce))) : '';
    return { jwt: current.jwt, nkey: kp.getPublicKey(), sig };
  };
  return { authenticator, current: () => current };
}
