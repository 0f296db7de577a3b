/**
 * The environment of one local replica's two processes (pure): the function gets its port and the call
 * API's URL, the sidecar gets the environment every sidecar gets (common/sidecar-env.ts), with this
 * machine's ports and the local broker.
 */
import { functionEnv } from '../common/function-protocol';
import { SIDECAR_ENV, literalEnv, sidecarEnv } from '../common/sidecar-env';
import type { NatsTlsFiles } from '../common/nats-client-settings';
import type { ServicePlan } from './plan';

export interface ReplicaPorts {
  fnPort: number;
  opsPort: number;
  callPort: number;
}

export interface ReplicaEnvOptions {
  /** The parent's environment without its FNMESH_* settings (see `baseEnv`). */
  base: NodeJS.ProcessEnv;
  natsUrl: string;
  natsToken?: string;
  /** The TLS files every NATS client of the mesh uses (FNMESH_NATS_TLS_*). */
  natsTls?: NatsTlsFiles;
  logLevel: string;
}

/**
 * A local sidecar waits for its in-flight calls at most the service's call timeout when it stops: a call
 * without a budget of its own cannot take longer, and Ctrl-C should not hang on one that does.
 */
export function drainTimeoutMs(plan: ServicePlan): number {
  return plan.timeoutMs;
}

/** The parent's env without its FNMESH_* settings (each child gets exactly its own). */
export function baseEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) continue;
    if (k.startsWith('FNMESH_') && k !== SIDECAR_ENV.logLevel) continue;
    out[k] = v;
  }
  return out;
}

/** One replica: what it is, where its ports are, and the mesh it joins. */
export interface ReplicaPlacement extends ReplicaEnvOptions {
  plan: ServicePlan;
  id: string;
  ports: ReplicaPorts;
  /** The service's `.creds` file (its own NATS user). */
  natsCredsFile?: string;
}

/** The function process's environment: what every function gets (common/function-protocol.ts), on this machine's ports. */
export function functionProcessEnv({ plan, ports, base }: ReplicaPlacement): NodeJS.ProcessEnv {
  return {
    ...base,
    ...plan.env,
    ...literalEnv(functionEnv({ functionPort: ports.fnPort, callApiPort: ports.callPort })),
  };
}

/** The sidecar process's environment: every sidecar's (common/sidecar-env.ts) on this machine's ports. */
export function sidecarProcessEnv({ plan, id, ports, base, ...mesh }: ReplicaPlacement): NodeJS.ProcessEnv {
  return {
    ...base,
    ...literalEnv(
      sidecarEnv(plan.manifest, {
        natsUrl: mesh.natsUrl,
        ...(mesh.natsToken ? { natsToken: mesh.natsToken } : {}),
        ...(mesh.natsCredsFile ? { natsCredsFile: mesh.natsCredsFile } : {}),
        ...(mesh.natsTls ? { natsTls: mesh.natsTls } : {}),
        functionPort: ports.fnPort,
        opsListen: `127.0.0.1:${ports.opsPort}`,
        callListen: `127.0.0.1:${ports.callPort}`,
        drainTimeoutMs: drainTimeoutMs(plan),
        replicaId: id,
        logLevel: mesh.logLevel,
      }),
    ),
  };
}
