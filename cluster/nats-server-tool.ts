/**
 * Where the nats-server of the official `nats` image is (cluster/nats-image.ts): the binary that
 * scripts/nats-server-tool.sh builds once and caches, found through its `--print-env` (the script holds the
 * one definition of the cache path; NATS_SERVER_VERSION in common/nats-server-version.ts the version).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../common/process/repo-root';

export const NATS_SERVER_TOOL = path.join(repoRoot(), 'scripts', 'nats-server-tool.sh');

/** The built binary's path, or undefined when it is not built yet. */
export async function natsServerBinary(): Promise<{ path: string; built: boolean }> {
  const { stdout } = await promisify(execFile)('bash', [NATS_SERVER_TOOL, '--print-env']);
  const bin = /^NATS_SERVER_BIN=(.+)$/m.exec(stdout)?.[1] ?? '';
  if (!bin) throw new Error(`${NATS_SERVER_TOOL} --print-env printed no NATS_SERVER_BIN=...: ${stdout.trim()}`);
  return { path: bin, built: existsSync(bin) };
}

/** Builds it (about a minute or two cold; needs Go), its messages on stderr; throws naming the fix. */
export function buildNatsServer(): void {
  const r = spawnSync('bash', [NATS_SERVER_TOOL], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0)
    throw new Error(
      `bash scripts/nats-server-tool.sh failed (its messages are above): fix what it says (it needs Go to build nats-server), then run it again`,
    );
}
