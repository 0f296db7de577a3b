/** The port helpers the tests use: one implementation, in common/process/ports.ts. */
export { freePort, waitForPort } from '../../common/process/ports';
