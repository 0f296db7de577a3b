/** A container's image pull policy, as Kubernetes takes it: the FunctionService's and the operator's setting. Light. */
export const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'] as const;
export type PullPolicy = (typeof PULL_POLICIES)[number];
