/**
 * The FunctionService status for what the operator observed. Pure: the same inputs give the same status,
 * and a condition's lastTransitionTime changes only when its status does, so `statusEqual` with the
 * previous status tells the reconciler whether a write is needed at all.
 */
import type { V1Deployment, V1DeploymentCondition } from '@kubernetes/client-node';
import { OPS_PORT_NAME, SERVICE_LABEL } from './desired-deployment';
import { NOT_OWNED_REASON } from './ownership';

export type ConditionType = 'Ready' | 'Progressing' | 'Degraded';
export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** metav1.Condition. */
export interface Condition {
  type: ConditionType;
  status: ConditionStatus;
  observedGeneration?: number;
  /** RFC 3339, whole seconds (what the API server stores for a metav1.Time). */
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface FunctionServiceStatus {
  observedGeneration?: number;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  /** Label selector of the pods, for the scale subresource (`kubectl scale`, HPA). */
  selector: string;
  conditions: Condition[];
}

/** What computeStatus needs of a FunctionService; `spec` may be absent or unusable when it is invalid. */
export interface StatusSubject {
  metadata: { name: string; generation?: number };
  spec?: { replicas?: number };
}

/** Deployment fields computeStatus reads (a V1Deployment as the API returns it fits). */
export type ObservedDeployment = Pick<V1Deployment, 'metadata' | 'spec' | 'status'>;

export interface Observed {
  /** The service's Deployment as read; undefined when it does not exist (yet). */
  deployment?: ObservedDeployment;
  /** Why the spec cannot be realised, naming the field (InvalidSpecError's message). */
  specError?: string;
  /** The API server refused the Deployment apply. */
  applyError?: { reason: string; message: string };
  /** A Deployment of the service's name exists that the operator does not own (ownership.ts's message). */
  notOwned?: { message: string };
}

const CONDITION_TYPES: readonly ConditionType[] = ['Ready', 'Progressing', 'Degraded'];

/** metav1.Time precision: whole seconds, `Z`. */
export function kubeTime(now: Date): string {
  return now.toISOString().replace(/\.\d+Z$/, 'Z');
}

function deploymentCondition(d: ObservedDeployment | undefined, type: string): V1DeploymentCondition | undefined {
  return d?.status?.conditions?.find((c) => c.type === type);
}

type Draft = Omit<Condition, 'lastTransitionTime' | 'observedGeneration'>;

/** Longest condition message kept (the CRD allows 32768; an API server's error can quote a whole object). */
const MAX_MESSAGE = 4096;

function cond(type: ConditionType, status: ConditionStatus, reason: string, message: string): Draft {
  return {
    type,
    status,
    reason,
    message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
  };
}

function plural(n: number): string {
  return n === 1 ? 'replica' : 'replicas';
}

/**
 * What an unavailable replica can be, and where to look: besides pods that crash or fail to start, a replica
 * is not ready while its sidecar keeps it out of rotation (its function down or failing its health check,
 * or ejected by outlier detection), and the sidecar's /readyz says which.
 */
export function unavailableReplicasHint(service: string): string {
  return (
    'unready replicas include those their sidecar took out of rotation (function down or unhealthy, or ejected ' +
    `by outlier detection); see kubectl describe pod -l ${SERVICE_LABEL}=${service}, the reason in the sidecar's ` +
    `GET /readyz on its ${OPS_PORT_NAME} port, and the gateway's GET /v1/services`
  );
}

export function computeStatus(
  fs: StatusSubject,
  observed: Observed,
  now: Date,
  previous?: Partial<FunctionServiceStatus>,
): FunctionServiceStatus {
  const d = observed.deployment;
  const desired = fs.spec?.replicas ?? d?.spec?.replicas ?? 1;
  const replicas = d?.status?.replicas ?? 0;
  const readyReplicas = d?.status?.readyReplicas ?? 0;
  const updatedReplicas = d?.status?.updatedReplicas ?? 0;
  const availableReplicas = d?.status?.availableReplicas ?? 0;
  const depCurrent = d !== undefined && (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0);
  const progressing = deploymentCondition(d, 'Progressing');
  const replicaFailure = deploymentCondition(d, 'ReplicaFailure');
  const deadlineExceeded = progressing?.status === 'False' && progressing.reason === 'ProgressDeadlineExceeded';
  const rolledOut =
    d !== undefined &&
    depCurrent &&
    updatedReplicas === desired &&
    availableReplicas === desired &&
    replicas === desired &&
    (d.spec?.replicas ?? desired) === desired;
  const counts = `${availableReplicas}/${desired} ${plural(desired)} available, ${updatedReplicas} updated`;
  const hint = unavailableReplicasHint(fs.metadata.name);
  const generation = fs.metadata.generation;
  // Replicas lost after the service was Ready at this same generation (pods crash-looping, failing their
  // readiness probe, evicted): no rollout is under way, so the Deployment keeps saying its rollout completed
  // (Progressing True/NewReplicaSetAvailable) and no progress deadline will ever fire. A spec change (a new
  // generation, such as a scale-up) is a rollout instead, reported as Progressing until it completes.
  const atThisGeneration = (type: ConditionType): Condition | undefined => {
    const c = previous?.conditions?.find((x) => x.type === type);
    return c && generation !== undefined && c.observedGeneration === generation ? c : undefined;
  };
  const prevReady = atThisGeneration('Ready');
  const prevDegraded = atThisGeneration('Degraded');
  const lostReplicas =
    !rolledOut &&
    !deadlineExceeded &&
    d !== undefined &&
    depCurrent &&
    progressing?.reason === 'NewReplicaSetAvailable' &&
    updatedReplicas === desired &&
    replicas === desired &&
    (d.spec?.replicas ?? desired) === desired &&
    (prevReady?.status === 'True' ||
      (prevDegraded?.status === 'True' && prevDegraded.reason === 'ReplicasUnavailable'));

  let ready: Draft;
  let prog: Draft;
  let degraded: Draft;

  if (observed.specError !== undefined) {
    const message = `the spec cannot be run: ${observed.specError}`;
    ready = cond('Ready', 'False', 'InvalidSpec', message);
    prog = cond('Progressing', 'False', 'InvalidSpec', message);
    degraded = cond('Degraded', 'True', 'InvalidSpec', message);
  } else if (observed.applyError !== undefined) {
    const message = `the API server refused the Deployment (${observed.applyError.reason}): ${observed.applyError.message}`;
    ready = cond('Ready', 'False', 'ApplyFailed', message);
    prog = cond('Progressing', 'False', 'ApplyFailed', message);
    degraded = cond('Degraded', 'True', 'ApplyFailed', message);
  } else if (observed.notOwned !== undefined) {
    const message = observed.notOwned.message;
    ready = cond('Ready', 'False', NOT_OWNED_REASON, message);
    prog = cond('Progressing', 'False', NOT_OWNED_REASON, message);
    degraded = cond('Degraded', 'True', NOT_OWNED_REASON, message);
  } else if (d === undefined) {
    ready = cond('Ready', 'False', 'DeploymentNotFound', 'the Deployment is not created yet');
    prog = cond('Progressing', 'True', 'Creating', 'creating the Deployment');
    degraded = cond('Degraded', 'False', 'AsExpected', 'no failure observed');
  } else {
    if (rolledOut) {
      ready =
        desired === 0
          ? cond('Ready', 'True', 'ScaledToZero', 'scaled to 0 replicas')
          : cond('Ready', 'True', 'Available', counts);
      prog = cond('Progressing', 'False', 'RolloutComplete', desired === 0 ? 'scaled to 0 replicas' : counts);
    } else if (deadlineExceeded) {
      ready = cond('Ready', 'False', 'ProgressDeadlineExceeded', counts);
      prog = cond(
        'Progressing',
        'False',
        'ProgressDeadlineExceeded',
        progressing.message ?? 'the rollout made no progress within its deadline',
      );
    } else if (lostReplicas) {
      ready = cond('Ready', 'False', 'ReplicasNotAvailable', `${counts}; ${hint}`);
      prog = cond('Progressing', 'False', 'RolloutComplete', `the rollout is complete; ${counts}`);
    } else {
      ready = cond(
        'Ready',
        'False',
        depCurrent ? 'ReplicasNotAvailable' : 'DeploymentNotObserved',
        depCurrent ? counts : 'the Deployment controller has not seen the latest Deployment yet',
      );
      prog = cond('Progressing', 'True', progressing?.reason ?? 'RolloutInProgress', progressing?.message ?? counts);
    }
    if (replicaFailure?.status === 'True') {
      degraded = cond(
        'Degraded',
        'True',
        replicaFailure.reason ?? 'ReplicaFailure',
        replicaFailure.message ?? 'pods of the service cannot be created',
      );
    } else if (deadlineExceeded && availableReplicas < desired) {
      degraded = cond(
        'Degraded',
        'True',
        'ReplicasUnavailable',
        `${counts}; the rollout passed its progress deadline; ${hint}`,
      );
    } else if (lostReplicas) {
      degraded = cond(
        'Degraded',
        'True',
        'ReplicasUnavailable',
        `${counts}; replicas became unavailable after the service was ready (pods failing or not ready); ${hint}`,
      );
    } else {
      degraded = cond('Degraded', 'False', 'AsExpected', 'no failure observed');
    }
  }

  const timestamp = kubeTime(now);
  const conditions = [ready, prog, degraded].map((draft): Condition => {
    const prev = previous?.conditions?.find((c) => c.type === draft.type);
    const c: Condition = {
      type: draft.type,
      status: draft.status,
      lastTransitionTime:
        prev && prev.status === draft.status && prev.lastTransitionTime ? prev.lastTransitionTime : timestamp,
      reason: draft.reason,
      message: draft.message,
    };
    if (generation !== undefined) c.observedGeneration = generation;
    return c;
  });

  const status: FunctionServiceStatus = {
    replicas,
    readyReplicas,
    updatedReplicas,
    availableReplicas,
    selector: `${SERVICE_LABEL}=${fs.metadata.name}`,
    conditions,
  };
  if (generation !== undefined) status.observedGeneration = generation;
  return status;
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) out[k] = canonical(v);
    }
    return out;
  }
  return value;
}

function sortedConditions(s: Partial<FunctionServiceStatus> | undefined): unknown {
  const byType = new Map((s?.conditions ?? []).map((c) => [c.type, c]));
  return CONDITION_TYPES.map((t) => byType.get(t));
}

/**
 * True when two statuses say the same: same fields and the same conditions, in any order. The status as
 * read back from the API server may carry fields this operator does not write; pass only what it wrote.
 */
export function statusEqual(
  a: Partial<FunctionServiceStatus> | undefined,
  b: Partial<FunctionServiceStatus> | undefined,
): boolean {
  const strip = (s: Partial<FunctionServiceStatus> | undefined) =>
    canonical({ ...(s ?? {}), conditions: sortedConditions(s) });
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
