#!/usr/bin/env node
'use strict';
// The `fnmesh` command: the compiled CLI lives in dist/ (run `npm run build` first).
try {
  require('../dist/cli/start.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && /dist\/cli\/(start|main)\.js/.test(String(err.message))) {
    console.error('fnmesh: the CLI is not built. Run `npm run build` in the fnmesh checkout, then try again.');
    process.exit(1);
  }
  throw err;
}
