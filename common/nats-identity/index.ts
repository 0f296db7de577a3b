/**
 * The mesh's NATS identities: who connects (identity), what each may do (permissions), the trust chain that
 * signs them (trust-chain), minting a user (user-credentials), the `.creds` format and file, and the
 * nats-server configuration that enforces it (server-config).
 */
export * from './identity';
export * from './permissions';
export * from './trust-chain';
export * from './user-credentials';
export * from './creds-format';
export * from './creds-file';
export * from './server-config';
export * from './rotation';
export * from './secret-layout';
export * from './trust-dir';
