/** `readable-stream/lib/_stream_writable.js` in the sidecar bundle: Node's own Writable (readable-stream.ts). */
import { Writable } from 'node:stream';

export = Writable;
