export { startSidecar, type DrainResult, type Sidecar, type SidecarDeps } from './sidecar';
export { loadSidecarConfig, type SidecarConfig } from './config';
export { main } from './main';
export { microServiceName } from './micro';
