export { startBroker, BROKER_PROTOCOL_VERSION } from './server';
export type { Broker, BrokerOptions, BrokerStats } from './server';
export type { BrokerUser } from './permissions';
