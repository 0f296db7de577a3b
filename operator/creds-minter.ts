/**
 * Mints and rotates NATS user credentials into Secrets (the shell around nats-creds.ts): loads the trust
 * chain once (trust-store.ts; a failure is retried on the next call), reads the identity's Secret, and
 * mints again only when mintDecision says so. Returns when to look again (the next rotation time): the
 * reconciler requeues the key for then, controller-runtime's RequeueAfter.
 */
import type { V1OwnerReference } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import {
  credsFromSecretData,
  credsSecretData,
  mintUser,
  rotationDecision,
  rotationPolicyFor,
  type MeshIdentity,
  type MeshTrust,
  type ParsedCreds,
} from '../common/nats-identity';
import type { NatsCredsConfig } from './config';
import { FIELD_MANAGER, MANAGED_BY_LABEL } from './desired-deployment';
import type { SecretWriter } from './kube-writer';
import { desiredCredsSecret, mintDecision } from './nats-creds';
import { decodedSecretData, loadTrust, publishAccount } from './trust-store';

export interface CredsTarget {
  identity: MeshIdentity;
  namespace: string;
  name: string;
  responseTtlMs: number;
  /** The owner (controller) of the Secret: a FunctionService. */
  owner?: V1OwnerReference;
}

export interface NatsCredsMinterOptions {
  secrets: SecretWriter;
  config: NatsCredsConfig;
  now?: () => Date;
}

export class NatsCredsMinter {
  private readonly o: NatsCredsMinterOptions;
  private readonly now: () => Date;
  private trustLoad: Promise<MeshTrust> | undefined;

  constructor(options: NatsCredsMinterOptions) {
    this.o = options;
    this.now = options.now ?? (() => new Date());
  }

  /** The trust chain (created once if absent) with its public parts published. */
  trust(log: Logger): Promise<MeshTrust> {
    this.trustLoad ??= (async () => {
      const trust = await loadTrust(this.o.secrets, this.o.config);
      const ref = this.o.config.accountSecret;
      if (await publishAccount(this.o.secrets, ref, trust))
        log.info('published the NATS operator and account JWTs', { secret: `${ref.namespace}/${ref.name}` });
      return trust;
    })();
    this.trustLoad.catch(() => (this.trustLoad = undefined));
    return this.trustLoad;
  }

  /** Makes the target's Secret hold valid, current credentials; resolves with when to check again. */
  async ensure(target: CredsTarget, log: Logger): Promise<Date> {
    const trust = await this.trust(log);
    const where = `Secret ${target.namespace}/${target.name}`;
    const secret = await this.o.secrets.readSecret(target.namespace, target.name);
    if (secret && secret.metadata?.labels?.[MANAGED_BY_LABEL] !== FIELD_MANAGER)
      throw new ConfigError(
        `${where} exists and was not made by the fnmesh operator: it holds the NATS credentials of ${target.identity.kind === 'replica' ? `${target.identity.namespace}/${target.identity.service}` : target.identity.kind}; delete or rename it`,
      );
    let existing: ParsedCreds | undefined;
    if (secret) {
      try {
        existing = credsFromSecretData(decodedSecretData(secret), where);
      } catch (err) {
        log.info('the credentials Secret is unusable; minting again', { secret: where, reason: errorMessage(err) });
      }
    }
    const ownerUid = secret?.metadata?.ownerReferences?.find((r) => r.controller)?.uid;
    const policy = rotationPolicyFor(this.o.config.userTtlMs);
    const now = this.now();
    const decision =
      target.owner && secret && ownerUid !== target.owner.uid
        ? { mint: true as const, reason: 'the Secret belongs to an earlier object of that name' }
        : mintDecision(
            existing,
            {
              identity: target.identity,
              signer: trust.signingKey.getPublicKey(),
              account: trust.account.getPublicKey(),
              responseTtlMs: target.responseTtlMs,
            },
            now,
            policy,
          );
    if (!decision.mint) return decision.checkAt;
    const minted = await mintUser(trust, target.identity, {
      ttlMs: this.o.config.userTtlMs,
      responseTtlMs: target.responseTtlMs,
      now,
    });
    await this.o.secrets.applySecret(
      desiredCredsSecret({
        namespace: target.namespace,
        name: target.name,
        identity: target.identity,
        creds: minted.creds,
        ...(target.owner ? { owner: target.owner } : {}),
      }),
    );
    log.info('minted NATS credentials', {
      secret: where,
      reason: decision.reason,
      user: minted.publicKey,
      expiresAt: minted.expiresAt.toISOString(),
    });
    // From the JWT as stored (whole seconds), the way the next reconcile will read it.
    const stored = credsFromSecretData(credsSecretData(minted.creds), where);
    const next = rotationDecision(
      { issuedAt: stored.issuedAt, ...(stored.expiresAt ? { expiresAt: stored.expiresAt } : {}) },
      now,
      policy,
    );
    // A lifetime too short for the policy: look again soon rather than at once.
    return next.rotate ? new Date(now.getTime() + 1000) : next.checkAt;
  }
}

/** The delay until `at` from `now`, for a requeue (at least 1 s: a JWT's times are whole seconds). Pure. */
export function requeueDelayMs(at: Date, now: Date): number {
  return Math.max(1000, at.getTime() - now.getTime());
}
