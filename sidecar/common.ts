/**
 * The parts of common/ the sidecar uses, imported file by file: the common/index barrel also loads the
 * manifest and rule schemas (zod, yaml), which the sidecar never needs and which cost start time and memory.
 */
export * from '../common/errors';
export * from '../common/names';
export * from '../common/protocol';
export * from '../common/resilience';
export * from '../common/config';
export * from '../common/logger';
export * from '../common/nats';
export * from '../common/nats-creds-reload';
export * from '../common/ops-server';
export * from '../common/metrics';
export * from '../common/sidecar-env';
export * from '../common/function-protocol';
export * from '../common/call-envelope';
export * from '../common/micro-names';
export * from '../common/replica-states';
export { inboxPrefix, replicaIdentity } from '../common/nats-identity/identity';
