export { loadGatewayConfig, readDefaultRule, type GatewayConfig, type ListenAddress } from './config';
export {
  buildRegistry,
  compileService,
  describeRegistry,
  Registry,
  EMPTY_REGISTRY,
  type ResolvedFunction,
  type ServiceEntry,
  type Lookup,
  type RegistryError,
  type RuleOrigin,
} from './registry';
export {
  parseCallRoute,
  parseCallBody,
  computeTimeoutMs,
  pickRequestId,
  pickTraceparent,
  resultEnvelope,
  type CallRoute,
  type CallBody,
} from './call-path';
export { toHttpError, type HttpError } from './errors-http';
export { headerBudget, embeddedMaxPayload, effectiveBodyLimit } from './limits';
export { OPENAPI_PATH, buildOpenApiDocument, renderOpenApiDocument } from './openapi';
export { createGatewayMetrics, type GatewayMetrics } from './metrics';
export { startGateway, type Gateway, type GatewayDeps } from './gateway';
export { main } from './main';
export {
  ManifestFileSource,
  StaticRuleSource,
  SOURCE_FILE_ANNOTATION,
  type RuleSource,
} from '../common/manifest-source';
export { NOT_CONNECTED_MESSAGE } from './invoke';
export { RECONNECT_WAIT_MS } from './retry-decision';
