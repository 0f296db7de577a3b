/**
 * `readable-stream` in the sidecar bundle (cli/build-bundles.ts): Node's own `stream`. winston and
 * winston-transport use readable-stream 3, a copy of Node 10's streams kept for old Node versions; on Node
 * 20 it is a second streams implementation beside the one net and http already load (0.9 MB of the
 * sidecar's idle resident memory). Its `lib/_stream_writable.js` (winston-transport) is `Writable`.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import stream = require('node:stream');

export = stream;
