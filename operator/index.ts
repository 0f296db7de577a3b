/** What the operator's wiring (main, reconciler) uses. */
export * from './config';
export * from './desired-deployment';
export * from './sidecar-injection';
export * from './status';
export * from './api-errors';
export * from './workqueue';
export * from './controller';
export * from './informer';
export * from './leader-election';
export * from './metrics';
export * from './drift';
export * from './keys';
export * from './events';
export * from './kube-writer';
export * from './reconciler';
export * from './operator';
