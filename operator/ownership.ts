/**
 * Whether the Deployment named after a FunctionService is the operator's to manage. Pure.
 *
 * The operator only applies to a Deployment that is absent (it creates it) or controlled by this very
 * FunctionService (a controller owner reference with its uid). Any other Deployment of that name is
 * someone else's: one created by hand or by another tool (no controller), one controlled by another object,
 * or the Deployment of an earlier FunctionService of the same name that the garbage collector has not
 * removed yet (a controller reference with another uid). Server-side apply with force would silently take
 * such a Deployment over; instead the reconciler leaves it untouched and reports why, with the fix.
 */
import { KIND } from '../common/crd-names';

export interface OwnerReferenceLike {
  apiVersion?: string;
  kind?: string;
  name?: string;
  uid?: string;
  controller?: boolean;
}

export interface DeploymentLike {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    ownerReferences?: OwnerReferenceLike[];
    deletionTimestamp?: unknown;
  };
}

export type DeploymentOwnership =
  | { kind: 'absent' }
  | { kind: 'owned' }
  | {
      kind: 'foreign';
      /** `namespace/name` of the Deployment. */
      deployment: string;
      /** Its controller, when it has one (another object, or an earlier FunctionService). */
      controller?: { kind: string; name: string; uid: string };
      /** It is being deleted (it will go away by itself). */
      deleting: boolean;
      /** For status and the Event: what is in the way, and the fix. */
      message: string;
    };

/** Status/Event reason for a Deployment the operator does not own. */
export const NOT_OWNED_REASON = 'DeploymentNotOwned';

export function deploymentOwnership(
  ownerUid: string,
  deployment: DeploymentLike | undefined,
  ownerKind: string = KIND,
): DeploymentOwnership {
  if (!deployment) return { kind: 'absent' };
  const m = deployment.metadata ?? {};
  const controllerRef = (m.ownerReferences ?? []).find((r) => r.controller === true);
  if (controllerRef && controllerRef.uid === ownerUid) return { kind: 'owned' };
  const name = `${m.namespace ?? ''}/${m.name ?? ''}`;
  const deleting = m.deletionTimestamp !== undefined && m.deletionTimestamp !== null;
  const controller = controllerRef
    ? { kind: controllerRef.kind ?? '?', name: controllerRef.name ?? '?', uid: controllerRef.uid ?? '?' }
    : undefined;
  let message: string;
  if (controller && controller.kind === ownerKind && controller.name === m.name) {
    message =
      `Deployment ${name} belongs to an earlier ${ownerKind} of the same name (uid ${controller.uid}), not to this one; ` +
      (deleting
        ? 'it is being deleted, and the operator creates a new one once it is gone'
        : 'delete that Deployment and the operator creates a new one');
  } else {
    const who = controller
      ? `is controlled by ${controller.kind} ${controller.name} (uid ${controller.uid})`
      : 'was not created by this operator (it has no controller)';
    message =
      `Deployment ${name} already exists and ${who}; the operator does not take over a Deployment it does not own` +
      (deleting
        ? ': it is being deleted, and the operator creates its own once it is gone'
        : `: delete or rename that Deployment, or rename the ${ownerKind}`);
  }
  return { kind: 'foreign', deployment: name, ...(controller ? { controller } : {}), deleting, message };
}
