#!/usr/bin/env node
'use strict';
// The `fnmesh` command: the compiled CLI lives in dist/ (run `npm run build` first).
try {
  require('../dist/cli/main.js');
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    console.error('fnmesh: the CLI is not built. Run `npm run build` in the fnmesh checkout, then try again.');
    process.exit(1);
  }
  throw err;
}
