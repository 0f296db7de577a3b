/**
 * Reconciles one FunctionService (`namespace/name`) into its Deployment and its status. Level-based: it
 * reads the FunctionService and the Deployment from the informer caches, never from the event that
 * queued the key, and reconciling twice changes nothing the second time.
 *
 * - gone (or being deleted): nothing to do; the Deployment goes through its owner reference (real GC);
 * - a spec the operator cannot run: status Degraded/InvalidSpec, a Warning event, a TerminalError (no
 *   retries until the object changes);
 * - otherwise the desired Deployment is applied only when the observed one drifted from it (zero API
 *   writes at steady state), and the status is patched only when it changed.
 *
 * Informer caches lag the operator's own writes by a watch event. So that a reconcile that runs in that
 * gap (for example one queued by the status write) does not write the same thing again, the reconciler
 * remembers its last write per key together with the resourceVersion it was based on: while the cache
 * still shows that version, it compares with what it wrote instead.
 */
import type { V1Deployment } from '@kubernetes/client-node';
import { ConfigError, errorMessage } from '../common/errors';
import type { Logger } from '../common/logger';
import { API_VERSION, KIND, parseFunctionService } from '../common/manifest';
import { classifyApiError } from './api-errors';
import type { SidecarTemplateConfig } from './config';
import { TerminalError, type ReconcileResult } from './controller';
import { InvalidSpecError, desiredDeployment, type ClusterFunctionService } from './desired-deployment';
import { driftPaths } from './drift';
import type { EventRecorder, InvolvedObject } from './events';
import { splitKey } from './keys';
import type { KubeWriter } from './kube-writer';
import { computeStatus, statusEqual, type FunctionServiceStatus, type Observed, type StatusSubject } from './status';

/** A FunctionService as the API server (and the informer cache) holds it. */
export interface FunctionServiceObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    generation?: number;
    resourceVersion?: string;
    deletionTimestamp?: unknown;
    [k: string]: unknown;
  };
  spec?: Record<string, unknown>;
  status?: Partial<FunctionServiceStatus>;
}

export interface Cache<T> {
  get(namespace: string, name: string): T | undefined;
}

export interface ReconcilerOptions {
  functionServices: Cache<FunctionServiceObject>;
  deployments: Cache<V1Deployment>;
  writer: KubeWriter;
  events: EventRecorder;
  sidecar: SidecarTemplateConfig;
  now?: () => Date;
}

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

function shortList(paths: string[], max = 5): string {
  return paths.length <= max ? paths.join(', ') : `${paths.slice(0, max).join(', ')} and ${paths.length - max} more`;
}

export class FunctionServiceReconciler {
  private readonly o: ReconcilerOptions;
  private readonly now: () => Date;
  private readonly appliedDeployments = new Map<string, Written<string>>();
  private readonly writtenStatuses = new Map<string, Written<FunctionServiceStatus>>();

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
    if (uid) this.o.events.forget(uid);
  }

  readonly reconcile = async (key: string, log: Logger): Promise<ReconcileResult | void> => {
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

    let desired: V1Deployment;
    try {
      const fs = parseFunctionService(forParsing(obj), key) as ClusterFunctionService;
      fs.metadata.uid = uid;
      desired = desiredDeployment(fs, this.o.sidecar);
    } catch (err) {
      if (!(err instanceof ConfigError) && !(err instanceof InvalidSpecError)) throw err;
      // ConfigError's message starts with the source (the key) and the words below; keep the field part.
      const specError = errorMessage(err).replace(`${key}: invalid FunctionService: `, '');
      await this.o.events.record(involved, 'Warning', 'InvalidSpec', `the spec cannot be run: ${specError}`);
      await this.writeStatus(key, obj, subject, { deployment: observedDeployment, specError }, log);
      throw new TerminalError(`invalid spec: ${specError}`);
    }

    let deployment: V1Deployment | undefined = observedDeployment;
    const basedOn = observedDeployment?.metadata?.resourceVersion ?? ABSENT;
    const desiredJson = JSON.stringify(desired);
    const pending = this.appliedDeployments.get(key);
    const alreadyApplied = pending !== undefined && pending.basedOn === basedOn && pending.value === desiredJson;
    const drift = observedDeployment ? driftPaths(comparedPart(desired), observedDeployment) : ['(the Deployment does not exist)'];
    if (drift.length > 0) log.debug('the Deployment differs from the desired one', { drift: drift.slice(0, 20), alreadyApplied });
    if (drift.length > 0 && alreadyApplied) {
      // Applied already; the cache has not caught up. Its watch event queues this key again.
      log.debug('the Deployment was applied; waiting for the cache');
      return;
    }
    if (drift.length > 0) {
      log.info(observedDeployment ? 'the Deployment drifted; applying' : 'creating the Deployment', { drift: drift.slice(0, 20) });
      try {
        deployment = await this.o.writer.applyDeployment(desired);
      } catch (err) {
        const c = classifyApiError(err);
        if (c.class !== 'invalid' && c.class !== 'forbidden') throw err;
        const applyError = { reason: c.reason ?? c.class, message: c.message };
        await this.o.events.record(involved, 'Warning', 'ApplyFailed', `the API server refused the Deployment (${applyError.reason}): ${c.message}`);
        await this.writeStatus(key, obj, subject, { deployment: observedDeployment, applyError }, log);
        throw new TerminalError(`applying the Deployment failed (${applyError.reason}): ${c.message}`);
      }
      this.appliedDeployments.set(key, { basedOn, value: desiredJson });
      if (observedDeployment) {
        await this.o.events.record(involved, 'Normal', 'Updated', `Deployment ${name} updated: ${shortList(drift)} put back to the spec (generation ${deployment.metadata?.generation ?? '?'})`);
      } else {
        await this.o.events.record(involved, 'Normal', 'Created', `Deployment ${name} created (uid ${deployment.metadata?.uid ?? '?'})`);
      }
    }
    await this.writeStatus(key, obj, subject, { deployment }, log);
  };

  private async writeStatus(key: string, obj: FunctionServiceObject, subject: StatusSubject, observed: Observed, log: Logger): Promise<void> {
    const rv = obj.metadata?.resourceVersion ?? '';
    const written = this.writtenStatuses.get(key);
    // While the cache still shows the object the last write was based on, that write is the truth.
    const previous = written && written.basedOn === rv ? written.value : writtenPart(obj.status);
    const next = computeStatus(subject, observed, this.now(), previous);
    if (statusEqual(previous, next)) return;
    const { namespace, name } = splitKey(key);
    await this.o.writer.patchStatus(namespace, name, next);
    this.writtenStatuses.set(key, { basedOn: rv, value: next });
    const ready = next.conditions.find((c) => c.type === 'Ready');
    log.debug('status updated', { ready: ready?.status, reason: ready?.reason, readyReplicas: next.readyReplicas });
  }
}
