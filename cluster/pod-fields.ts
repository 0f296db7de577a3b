/**
 * The pod fields a `fieldRef` may name (the downward API), as both the kubelet's users of it read them: a
 * container's env (pod-plan.ts) and a downwardAPI volume's files (volume-plan.ts). Pure; each caller says what
 * it does with a field this does not know, and adds what only it supports.
 */
import type { V1Pod } from '@kubernetes/client-node';

/** Where the pod runs: the fields only the node knows. The addresses are given where the caller supports them. */
export interface PodPlacement {
  nodeName: string;
  podIP?: string;
  hostIP?: string;
}

/** The value of `fieldPath` for `pod`, or undefined when it is not a field this caller may read. */
export function podFieldValue(pod: V1Pod, fieldPath: string, at: PodPlacement): string | undefined {
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (m) return (m[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[m[2]!] ?? '';
  switch (fieldPath) {
    case 'metadata.name':
      return pod.metadata?.name ?? '';
    case 'metadata.namespace':
      return pod.metadata?.namespace ?? '';
    case 'metadata.uid':
      return pod.metadata?.uid ?? '';
    case 'spec.nodeName':
      return at.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName ?? '';
    case 'status.podIP':
    case 'status.podIPs':
      return at.podIP;
    case 'status.hostIP':
    case 'status.hostIPs':
      return at.hostIP;
    default:
      return undefined;
  }
}
