/**
 * Reconciles one FunctionService (`namespace/name`) into its Deployment and its status. Level-based: it
 * reads the FunctionService and the Deployment from the informer caches, never from the event that
 * queued the key, and reconciling twice changes nothing the second time.
 *
 * - first (FNMESH_NATS_AUTH=jwt) the replicas' NATS credentials Secret (creds-minter.ts), minted or rotated
 *   when due; the key comes back at its next rotation time; and (FNMESH_SIDECAR_NATS_TLS_CA_FILE) the CA
 *   Secret of its sidecars, written when it does not hold the file's current CA;
 * - gone (or being deleted): nothing to do; the Deployment (and the credentials Secret) go through their
 *   owner reference (real GC);
 * - a spec the operator cannot run: status Degraded/InvalidSpec, a Warning event, a TerminalError (no
 *   retries until the object changes);
 * - a Deployment of that name that this FunctionService does not control (ownership.ts): left untouched,
 *   status Degraded/DeploymentNotOwned naming it and the fix, one Warning event; the key comes back when
 *   that Deployment changes or goes (the informer, or a watch of its own when it is outside the cache);
 * - otherwise the desired Deployment is applied only when the observed one drifted from it (zero API
 *   writes at steady state), first, and then the status is patched, only when it changed. Events are
 *   queued, never waited for.
 *
 * Informer caches lag the operator's own writes by a watch event. So that a reconcile that runs in that
 * gap (for example one queued by the status write) does not write the same thing again, the reconciler
 * remembers its last write per key together with the resourceVersion it was based on: while the cache
 * still shows that version, it compares with what it wrote instead.
 */
import { createHash } from 'node:crypto';
import type { V1Deployment } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import { API_VERSION, KIND } from '../common/crd-names';
import type { ApiObject } from '../common/list-watch';
import { parseFunctionService } from '../common/manifest';
import { credsSecretName, replicaIdentity } from '../common/nats-identity';
import { classifyApiError } from './api-errors';
import { requeueDelayMs, type NatsCredsMinter } from './creds-minter';
import { responseTtlMsFor } from './nats-creds';
import type { SidecarTemplateConfig } from './config';
import { TerminalError, type ReconcileResult } from './controller';
import {
  InvalidSpecError,
  OPERATOR_OWNED_ITEMS,
  desiredDeployment,
  type ClusterFunctionService,
} from './desired-deployment';
import { driftPaths } from './drift';
import { NOT_OWNED_REASON, deploymentOwnership } from './ownership';
import type { EventRecorder, InvolvedObject } from './events';
import { splitKey } from './keys';
import type { KubeWriter, SecretWriter } from './kube-writer';
import { desiredNatsCaSecret, natsCaSecretDecision, natsCaSecretName } from './nats-ca-secret';
import type { NatsCaBundle } from './sidecar-nats-ca';
import { computeStatus, type FunctionServiceStatus, type Observed, type StatusSubject } from './status';
import { statusWrite } from './status-pacing';

/** A FunctionService as the API server (and the informer cache) holds it. */
export type FunctionServiceObject = ApiObject<Record<string, unknown>, Partial<FunctionServiceStatus>>;

export interface Cache<T> {
  get(namespace: string, name: string): T | undefined;
}

/** Watches on Deployments outside the informer cache that block a FunctionService (foreign-watches.ts). */
export interface ForeignWatches {
  /** Watches `namespace/name` for `key`; false when it cannot (at its limit). */
  watch(key: string, namespace: string, name: string, resourceVersion: string | undefined): boolean;
  release(key: string): void;
}

export interface ReconcilerOptions {
  functionServices: Cache<FunctionServiceObject>;
  /** Deployments with the operator's label (the informer's label selector). */
  deployments: Cache<V1Deployment>;
  writer: KubeWriter;
  events: EventRecorder;
  sidecar: SidecarTemplateConfig;
  foreignWatches?: ForeignWatches;
  /** Mints the replicas' NATS credentials (FNMESH_NATS_AUTH=jwt); absent: none. */
  natsCreds?: Pick<NatsCredsMinter, 'ensure'>;
  /**
   * The sidecars' NATS CA (FNMESH_SIDECAR_NATS_TLS_CA_FILE): read at every reconcile (nats-ca-source.ts) and
   * copied into each FunctionService's CA Secret; absent: the sidecars use the system CAs.
   */
  natsCa?: { source: { read(): NatsCaBundle }; secrets: SecretWriter };
  /** In-progress status updates are written at most this often per key (status-pacing.ts); 0: every change at once. */
  statusProgressIntervalMs?: number;
  now?: () => Date;
}

/** How often a FunctionService blocked by a Deployment it does not own is re-checked when that Deployment cannot be watched. */
export const FOREIGN_RECHECK_MS = 60_000;

/** What the reconciler wrote last for a key, and the resourceVersion of the object it was based on. */
interface Written<T> {
  basedOn: string;
  value: T;
}

const ABSENT = '(absent)';

/** The metadata fields parseFunctionService validates; the rest (managedFields, ...) is not its concern. */
function forParsing(obj: FunctionServiceObject): unknown {
  const m = obj.metadata ?? {};
  const metadata: Record<string, unknown> = { name: m.name, namespace: m.namespace };
  if (m.generation !== undefined) metadata.generation = m.generation;
  return { apiVersion: obj.apiVersion, kind: obj.kind, metadata, spec: obj.spec ?? {} };
}

/** The fields of a stored status that this operator writes (statusEqual compares those). */
function writtenPart(s: Partial<FunctionServiceStatus> | undefined): Partial<FunctionServiceStatus> | undefined {
  if (!s) return undefined;
  const { observedGeneration, replicas, readyReplicas, updatedReplicas, availableReplicas, selector, conditions } = s;
  return { observedGeneration, replicas, readyReplicas, updatedReplicas, availableReplicas, selector, conditions };
}

/**
 * What of the desired Deployment the drift check compares: all but apiVersion and kind. Those name the
 * type, they are not content the cluster can drift on, and the API server leaves them off the items of a
 * LIST (the informer's initial list, unlike its watch events, would otherwise always seem to differ).
 */
function comparedPart(desired: V1Deployment): Omit<V1Deployment, 'apiVersion' | 'kind'> {
  const { apiVersion: _apiVersion, kind: _kind, ...rest } = desired;
  return rest;
}

/**
 * What a drift check depends on, hashed: the FunctionService (uid, generation: its spec) and the
 * Deployment's identity, generation (bumped by every change of its spec, not by status updates), labels,
 * annotations and owner references, and the sidecars' NATS CA (a new one changes the desired pod template). Pure.
 */
export function syncFingerprint(
  uid: string,
  fsVersion: number | string | undefined,
  d: V1Deployment,
  natsCaSha256?: string,
): string {
  const m = d.metadata ?? {};
  const text = JSON.stringify([
    uid,
    fsVersion,
    m.uid,
    m.generation,
    m.labels,
    m.annotations,
    m.ownerReferences,
    natsCaSha256 ?? null,
  ]);
  return createHash('sha1').update(text).digest('base64');
}

function shortList(paths: string[], max = 5): string {
  return paths.length <= max ? paths.join(', ') : `${paths.slice(0, max).join(', ')} and ${paths.length - max} more`;
}

export class FunctionServiceReconciler {
  private readonly o: ReconcilerOptions;
  private readonly now: () => Date;
  private readonly appliedDeployments = new Map<string, Written<string>>();
  private readonly writtenStatuses = new Map<string, Written<FunctionServiceStatus>>();
  /** When this process last applied a key's Deployment or wrote its status (status-pacing.ts). */
  private readonly lastActivity = new Map<string, number>();
  /** syncFingerprint of the FunctionService and the cached Deployment when a drift check last found none. */
  private readonly inSync = new Map<string, string>();

  constructor(options: ReconcilerOptions) {
    this.o = options;
    this.now = options.now ?? (() => new Date());
  }

  /** A Deployment of this key changed in the cache: what was remembered about it is stale. */
  deploymentChanged(key: string): void {
    this.appliedDeployments.delete(key);
  }

  /** The FunctionService is gone: forget everything about it. */
  forget(key: string, uid?: string): void {
    this.appliedDeployments.delete(key);
    this.writtenStatuses.delete(key);
    this.lastActivity.delete(key);
    this.inSync.delete(key);
    this.o.foreignWatches?.release(key);
    if (uid) this.o.events.forget(uid);
  }

  /**
   * The replicas' NATS credentials first (the pods mount their Secret), then the Deployment and the status;
   * the key comes back at the credentials' next rotation time (or earlier when the rest asks).
   */
  readonly reconcile = async (key: string, log: Logger): Promise<ReconcileResult | void> => {
    // A CA file that turned bad fails the reconcile (retried) and leaves everything as it is; a FunctionService
    // that is gone or going needs no CA (its clean-up must not wait for a good file).
    const { namespace, name } = splitKey(key);
    const live = this.o.functionServices.get(namespace, name);
    const natsCa = live?.metadata?.uid && !live.metadata.deletionTimestamp ? this.o.natsCa?.source.read() : undefined;
    const credsCheckAt = await this.ensureCreds(key, log);
    if (natsCa) await this.ensureNatsCaSecret(key, natsCa, log);
    const result = await this.reconcileWorkload(key, log, natsCa);
    if (credsCheckAt === undefined) return result;
    const credsDelay = requeueDelayMs(credsCheckAt, this.now());
    const other = result ? result.requeueAfterMs : undefined;
    return { requeueAfterMs: other === undefined ? credsDelay : Math.min(other, credsDelay) };
  };

  /** Mints or rotates the FunctionService's credentials Secret; undefined when there is nothing to do. */
  private async ensureCreds(key: string, log: Logger): Promise<Date | undefined> {
    if (!this.o.natsCreds) return undefined;
    const { namespace, name } = splitKey(key);
    const obj = this.o.functionServices.get(namespace, name);
    const uid = obj?.metadata?.uid;
    if (!obj || !uid || obj.metadata?.deletionTimestamp) return undefined;
    let fs: ClusterFunctionService;
    try {
      fs = parseFunctionService(forParsing(obj), key) as ClusterFunctionService;
    } catch (err) {
      if (err instanceof ConfigError) return undefined; // reported as InvalidSpec by the rest of the reconcile
      throw err;
    }
    const identity = replicaIdentity(namespace, name);
    return this.o.natsCreds.ensure(
      {
        identity,
        namespace,
        name: credsSecretName(identity),
        responseTtlMs: responseTtlMsFor(fs),
        owner: { apiVersion: API_VERSION, kind: KIND, name, uid, controller: true, blockOwnerDeletion: true },
      },
      log,
    );
  }

  /** Writes the CA Secret of the FunctionService's sidecars when it does not hold this CA (one read otherwise). */
  private async ensureNatsCaSecret(key: string, ca: NatsCaBundle, log: Logger): Promise<void> {
    const { namespace, name } = splitKey(key);
    const obj = this.o.functionServices.get(namespace, name);
    const uid = obj?.metadata?.uid;
    if (!obj || !uid || obj.metadata?.deletionTimestamp || !this.o.natsCa) return;
    const want = {
      namespace,
      name: natsCaSecretName(namespace, name),
      ca,
      owner: { apiVersion: API_VERSION, kind: KIND, name, uid, controller: true, blockOwnerDeletion: true },
    };
    const { secrets } = this.o.natsCa;
    const decision = natsCaSecretDecision(await secrets.readSecret(namespace, want.name), want);
    if (decision.action === 'refuse') throw new ConfigError(decision.message);
    if (decision.action === 'none') return;
    await secrets.applySecret(desiredNatsCaSecret(want));
    log.info("wrote the sidecars' NATS CA", {
      secret: `${namespace}/${want.name}`,
      reason: decision.reason,
      sha256: ca.sha256,
    });
  }

  private readonly reconcileWorkload = async (
    key: string,
    log: Logger,
    natsCa?: NatsCaBundle,
  ): Promise<ReconcileResult | void> => {
    const { namespace, name } = splitKey(key);
    const obj = this.o.functionServices.get(namespace, name);
    if (!obj || !obj.metadata?.uid) {
      log.debug('the FunctionService is gone; nothing to do');
      this.forget(key);
      return;
    }
    if (obj.metadata.deletionTimestamp) {
      log.debug('the FunctionService is being deleted; its Deployment goes with it');
      return;
    }
    const uid = obj.metadata.uid;
    const involved: InvolvedObject = { apiVersion: API_VERSION, kind: KIND, name, namespace, uid };
    const subject: StatusSubject = { metadata: { name, generation: obj.metadata.generation } };
    const replicas = obj.spec?.replicas;
    if (typeof replicas === 'number') subject.spec = { replicas };
    const observedDeployment = this.o.deployments.get(namespace, name);

    // Neither spec changed since a check found the Deployment in sync (a Deployment status update, a resync):
    // only the status can need a write.
    const fingerprint = observedDeployment
      ? syncFingerprint(
          uid,
          obj.metadata.generation ?? obj.metadata.resourceVersion,
          observedDeployment,
          natsCa?.sha256,
        )
      : undefined;
    if (fingerprint !== undefined && this.inSync.get(key) === fingerprint)
      return this.writeStatus(key, obj, subject, { deployment: observedDeployment }, log);
    this.inSync.delete(key);

    let desired: V1Deployment;
    try {
      const fs = parseFunctionService(forParsing(obj), key) as ClusterFunctionService;
      fs.metadata.uid = uid;
      desired = desiredDeployment(fs, this.o.sidecar, natsCa);
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof InvalidSpecError)) throw err;
      // ConfigError's message starts with the source (the key) and the words below; keep the field part.
      const specError = errorMessage(err).replace(`${key}: invalid FunctionService: `, '');
      void this.o.events.record(involved, 'Warning', 'InvalidSpec', `the spec cannot be run: ${specError}`);
      await this.writeStatus(key, obj, subject, { deployment: observedDeployment, specError }, log);
      throw new TerminalError(`invalid spec: ${specError}`);
    }

    const pending = this.appliedDeployments.get(key);
    const basedOn = observedDeployment?.metadata?.resourceVersion ?? ABSENT;
    const desiredJson = JSON.stringify(desired);
    const alreadyApplied = pending !== undefined && pending.basedOn === basedOn && pending.value === desiredJson;

    // Whose is the Deployment of this name? The cache holds only Deployments with the operator's label; when
    // it has none, one without the label may still exist: read it before creating anything.
    let observed: V1Deployment | undefined = observedDeployment;
    let readLive = false;
    if (!observedDeployment && !alreadyApplied) {
      observed = await this.o.writer.readDeployment(namespace, name);
      readLive = true;
    }
    const ownership = deploymentOwnership(uid, observed);
    if (ownership.kind === 'foreign') {
      log.info('a Deployment the operator does not own is in the way; leaving it alone', {
        deployment: ownership.deployment,
        controller: ownership.controller,
      });
      if (!readLive) this.o.foreignWatches?.release(key);
      void this.o.events.record(involved, 'Warning', NOT_OWNED_REASON, ownership.message);
      await this.writeStatus(key, obj, subject, { notOwned: { message: ownership.message } }, log); // settled: written at once
      // A Deployment in the cache queues this key through the informer when it changes; one outside it
      // through a watch of its own, or (past the watch limit) a periodic re-check.
      if (!readLive) return;
      const watching = this.o.foreignWatches?.watch(key, namespace, name, observed?.metadata?.resourceVersion) ?? false;
      return watching ? undefined : { requeueAfterMs: FOREIGN_RECHECK_MS };
    }
    this.o.foreignWatches?.release(key);

    let deployment: V1Deployment | undefined = observed;
    const drift = observed
      ? driftPaths(comparedPart(desired), observed, { ownedNames: OPERATOR_OWNED_ITEMS })
      : ['(the Deployment does not exist)'];
    if (drift.length === 0 && !readLive && fingerprint !== undefined) this.inSync.set(key, fingerprint);
    if (drift.length > 0)
      log.debug('the Deployment differs from the desired one', { drift: drift.slice(0, 20), alreadyApplied });
    if (drift.length > 0 && alreadyApplied) {
      // Applied already; the cache has not caught up. Its watch event queues this key again.
      log.debug('the Deployment was applied; waiting for the cache');
      return;
    }
    if (drift.length > 0) {
      log.info(observed ? 'the Deployment drifted; applying' : 'creating the Deployment', {
        drift: drift.slice(0, 20),
      });
      try {
        // Force only over a Deployment this FunctionService controls; a create must not take over one that
        // appeared since the read (the apply then fails with a conflict and the next reconcile reports it).
        deployment = await this.o.writer.applyDeployment(desired, { force: ownership.kind === 'owned' });
      } catch (err) {
        const c = classifyApiError(err);
        if (c.class !== 'invalid' && c.class !== 'forbidden') throw err;
        const applyError = { reason: c.reason ?? c.class, message: c.message };
        void this.o.events.record(
          involved,
          'Warning',
          'ApplyFailed',
          `the API server refused the Deployment (${applyError.reason}): ${c.message}`,
        );
        await this.writeStatus(key, obj, subject, { deployment: observed, applyError }, log);
        throw new TerminalError(`applying the Deployment failed (${applyError.reason}): ${c.message}`);
      }
      this.appliedDeployments.set(key, { basedOn, value: desiredJson });
      this.lastActivity.set(key, this.now().getTime());
      if (observed) {
        void this.o.events.record(
          involved,
          'Normal',
          'Updated',
          `Deployment ${name} updated: ${shortList(drift)} put back to the spec (generation ${deployment.metadata?.generation ?? '?'})`,
        );
      } else {
        void this.o.events.record(
          involved,
          'Normal',
          'Created',
          `Deployment ${name} created (uid ${deployment.metadata?.uid ?? '?'})`,
        );
      }
    }
    return this.writeStatus(key, obj, subject, { deployment }, log);
  };

  /** Writes the status when status-pacing.ts says so; asks to come back when it holds a progress update. */
  private async writeStatus(
    key: string,
    obj: FunctionServiceObject,
    subject: StatusSubject,
    observed: Observed,
    log: Logger,
  ): Promise<ReconcileResult | undefined> {
    const rv = obj.metadata?.resourceVersion ?? '';
    let written = this.writtenStatuses.get(key);
    if (written && written.basedOn !== rv) {
      // The cache has caught up with the write: what it shows is the truth again.
      this.writtenStatuses.delete(key);
      written = undefined;
    }
    // While the cache still shows the object the last write was based on, that write is the truth.
    const previous = written ? written.value : writtenPart(obj.status);
    const now = this.now();
    const next = computeStatus(subject, observed, now, previous);
    const decision = statusWrite(previous, next, {
      now: now.getTime(),
      lastActivityAt: this.lastActivity.get(key),
      intervalMs: this.o.statusProgressIntervalMs ?? 0,
    });
    if (decision.kind === 'none') return undefined;
    if (decision.kind === 'later') {
      log.debug('status progress held back', { inMs: decision.inMs });
      return { requeueAfterMs: decision.inMs };
    }
    const { namespace, name } = splitKey(key);
    await this.o.writer.patchStatus(namespace, name, next);
    this.writtenStatuses.set(key, { basedOn: rv, value: next });
    this.lastActivity.set(key, this.now().getTime());
    const ready = next.conditions.find((c) => c.type === 'Ready');
    log.debug('status updated', { ready: ready?.status, reason: ready?.reason, readyReplicas: next.readyReplicas });
    return undefined;
  }
}
