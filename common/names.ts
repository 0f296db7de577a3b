/**
 * Names that become NATS subject tokens and Kubernetes object names. Validated at every edge (HTTP path,
 * manifest, env) so that a name can never inject a wildcard or a dot into a subject.
 */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const FUNCTION_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,62}$/;
/** A Kubernetes object name such as a Secret's (at most 253 characters, checked apart). */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The function name whose rule applies to functions of the service that have no rule of their own: a rules
 * fallback, not a function (no sidecar announces it, no call is routed to it by that name).
 */
export const DEFAULT_FUNCTION = 'default';

export function isNamespaceName(value: string): boolean {
  return DNS_LABEL.test(value);
}
export function isServiceName(value: string): boolean {
  return DNS_LABEL.test(value);
}
export function isFunctionName(value: string): boolean {
  return FUNCTION_NAME.test(value);
}

export const NAME_RULES = {
  namespace:
    'a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  service:
    'a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
  function: 'letters, digits, "_" and "-", starting with a letter or "_", at most 63 characters',
  secret:
    'a Secret name (a DNS subdomain): lowercase letters, digits, "-" and ".", starting and ending with a letter or digit, at most 253 characters',
} as const;
