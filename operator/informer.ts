/**
 * The resilient informer lives in common/kube-informer.ts (the gateway's Kubernetes rule source uses it
 * too); this module re-exports it so the operator's imports stay as they were.
 */
export * from '../common/kube-informer';
