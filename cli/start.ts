/**
 * The `fnmesh` process (bin/fnmesh.js): a bare part command with a bundle (`fnmesh sidecar`, configured by env)
 * starts its bundle straight away, so the process never loads the command parser and the settings tables
 * of every part; anything else goes through the CLI (cli/main.ts), whose part commands start the same bundle
 * after turning flags into env.
 */
import { errorMessage } from '../common/errors';
import { directBundle, loadBundle, type BundledPart } from './bundles';

const bundle = directBundle(process.argv.slice(2));
if (bundle) {
  let part: BundledPart;
  try {
    part = loadBundle(bundle);
  } catch (err) {
    console.error(`fnmesh: ${errorMessage(err)}`);
    process.exit(1);
  }
  // the part's main handles its own failures (common/run-main.ts), as under the CLI
  void part.main(process.env);
} else {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('./main');
}
