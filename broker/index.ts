export { startBroker, BROKER_PROTOCOL_VERSION } from './server';
export type { Broker, BrokerOptions, BrokerStats, BrokerTlsOptions } from './server';
export { loadBrokerSecurity, type BrokerSecurity, type BrokerSecuritySettings } from './security-files';
export type { BrokerUser, JwtTrust } from './permissions';
