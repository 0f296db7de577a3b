/**
 * The names of NATS micro discovery (ADR-32) as fnmesh uses them: the subjects a replica answers on and its
 * service name. Here, not in the sidecar, because the replica's NATS permissions (nats-identity/) must allow
 * exactly these subjects.
 */
export const MICRO_API_PREFIX = '$SRV';
export const MICRO_VERBS = ['PING', 'INFO', 'STATS'] as const;
export type MicroVerb = (typeof MICRO_VERBS)[number];

/** The micro service name of a fnmesh service (micro names allow A-Z a-z 0-9 - _). */
export function microServiceName(namespace: string, service: string): string {
  return `fnmesh-${namespace}-${service}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/** `$SRV.{verb}`, `$SRV.{verb}.{name}` and `$SRV.{verb}.{name}.{id}`: what one replica subscribes per verb. */
export function microSubjects(verb: MicroVerb, name: string, id: string): string[] {
  return [
    `${MICRO_API_PREFIX}.${verb}`,
    `${MICRO_API_PREFIX}.${verb}.${name}`,
    `${MICRO_API_PREFIX}.${verb}.${name}.${id}`,
  ];
}
