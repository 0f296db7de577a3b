/**
 * `prom-client` in the sidecar bundle (cli/build-bundles.ts): the parts fnmesh uses, from their own files.
 * The package's index also loads the Summary, the Pushgateway (https, zlib) and the cluster aggregator,
 * which no part uses: 0.6 MB of the sidecar's idle resident memory. A part that imports anything else from
 * `prom-client` gets undefined here; the sidecar suites would fail on it.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as prom from 'prom-client';

export const Registry = require('prom-client/lib/registry') as typeof prom.Registry;
export const Counter = require('prom-client/lib/counter') as typeof prom.Counter;
export const Gauge = require('prom-client/lib/gauge') as typeof prom.Gauge;
export const Histogram = require('prom-client/lib/histogram') as typeof prom.Histogram;
export const collectDefaultMetrics = require('prom-client/lib/defaultMetrics') as typeof prom.collectDefaultMetrics;
