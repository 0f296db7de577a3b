/** The local mesh's public face: `fnmesh local`, and the plan and environment it gives each replica. */
export { runLocal, startLocalMesh, type LocalOptions, type RunningMesh } from './mesh';
export { desiredState, type DesiredState, type ServicePlan } from './plan';
export { functionProcessEnv, sidecarProcessEnv } from './replica-env';
