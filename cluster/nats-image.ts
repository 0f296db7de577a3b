/**
 * The official `nats` image (Docker Hub's `docker.io/library/nats`, built from github.com/nats-io/nats-docker),
 * defined in code for `fnmesh cluster`: its containers run the nats-server that scripts/nats-server-tool.sh
 * built, of the one version fnmesh runs (NATS_SERVER_VERSION), with the image's own ENTRYPOINT, CMD, default
 * config file and PATH. Two flavours, as in nats-docker:
 *   - scratch (`nats`, `nats:2.15.3`, `nats:2.15`, `nats:latest`, `nats:2.15.3-scratch`): ENTRYPOINT
 *     ["/nats-server"], CMD ["--config", "nats-server.conf"] (relative to `/`, the image's working folder);
 *   - alpine (`nats:2.15.3-alpine`, `nats:alpine3.22`, ...): ENTRYPOINT ["docker-entrypoint.sh"] (flags alone run
 *     nats-server with them; anything else is run as given), CMD ["nats-server", "--config",
 *     "/etc/nats/nats-server.conf"].
 * The image's files are a folder of this machine (`writeNatsImage`): `nats-server` (a link to the built
 * binary), the default `nats-server.conf` (client port 4222, monitoring 8222, cluster port 6222) and the
 * entrypoint script; an argv element naming one of the image's absolute paths is mapped to it, and the folder
 * comes first on PATH (so `nats-server` is the built one, never another on this machine).
 *
 * A tag of another version is refused (the pod shows ErrImageNeverPull with the version this has and the fix);
 * a floating tag (`latest`, `2`, `alpine`) and a digest, which cannot be checked without a registry, run the
 * version built here.
 */
import { chmodSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findImage, type LocalImage } from './images';

/** The repository as pods name it (`findImage` also matches `docker.io/library/nats` and the other spellings). */
export const NATS_REPOSITORY = 'nats';

export type NatsFlavour = 'scratch' | 'alpine';

/** The image's default configuration, as the official image ships it (the ports and the cluster block). */
export const NATS_DEFAULT_CONFIG = `# The official nats image's default configuration (fnmesh cluster's copy)
port: 4222
monitor_port: 8222
cluster {
  name: "my_cluster"
  port: 6222
  authorization {
    user: ruser
    password: T0pS3cr3t
    timeout: 2
  }
  routes = []
}
`;

/** The alpine flavour's entrypoint: no argument, or flags only, run nats-server with them; else run the argv. */
export const NATS_ENTRYPOINT_SCRIPT = `#!/bin/sh
set -e
if [ "$#" -eq 0 ] || [ "\${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"
`;

/** Where each flavour keeps its files inside the image, relative to the folder that stands for `/`. */
const LAYOUT: Record<NatsFlavour, { binary: string; config: string; entrypoint?: string; binDir: string }> = {
  scratch: { binary: 'nats-server', config: 'nats-server.conf', binDir: '.' },
  alpine: {
    binary: 'usr/local/bin/nats-server',
    config: 'etc/nats/nats-server.conf',
    entrypoint: 'usr/local/bin/docker-entrypoint.sh',
    binDir: 'usr/local/bin',
  },
};

const VARIANTS = /^(?:(scratch|linux)|(alpine)(?:\d+\.\d+)?|(nanoserver|windowsservercore)(?:-.*)?)$/;

/**
 * The flavour and version a tag of the official image names, or why it is not one. Pure.
 * `2.15.3`, `2.15`, `2`, `latest`, `2.15.3-alpine3.22`, `alpine`, `2-scratch`, `linux`...
 */
export function parseNatsTag(
  tag: string | undefined,
): { flavour: NatsFlavour; version?: string } | { problem: string } {
  const t = tag ?? 'latest';
  if (t === 'latest') return { flavour: 'scratch' };
  const m = /^(\d+(?:\.\d+){0,2})(?:-(.+))?$/.exec(t);
  const version = m?.[1];
  const variant = m ? m[2] : t;
  if (variant === undefined) return { flavour: 'scratch', version: version! };
  const v = VARIANTS.exec(variant);
  if (!v)
    return {
      problem: `nats:${t} is not a tag of the official nats image that fnmesh cluster models (VERSION, VERSION-alpine, VERSION-scratch, latest, alpine)`,
    };
  if (v[3])
    return {
      problem: `nats:${t} is a Windows image; fnmesh cluster runs Linux processes: use nats:${version ?? 'latest'}`,
    };
  const flavour: NatsFlavour = v[2] ? 'alpine' : 'scratch';
  return version ? { flavour, version } : { flavour };
}

/** Whether a tag's version (`2`, `2.15`, `2.15.3`) names `built` (`2.15.3`). Pure. */
export function versionMatches(tagVersion: string, built: string): boolean {
  const want = tagVersion.split('.');
  const have = built.split('.');
  return want.every((part, i) => Number(part) === Number(have[i]));
}

/** The flavour a reference's tag runs, or the problem (another version; not a tag of this image). Pure. */
export function natsVariant(
  tag: string | undefined,
  builtVersion: string,
): { flavour: NatsFlavour } | { problem: string } {
  const parsed = parseNatsTag(tag);
  if ('problem' in parsed) return parsed;
  if (parsed.version && !versionMatches(parsed.version, builtVersion))
    return {
      problem:
        `image nats:${tag} is nats-server ${parsed.version}, but fnmesh cluster runs the official nats image with the nats-server it builds, v${builtVersion} ` +
        `(common/nats-server-version.ts): use nats:${builtVersion}${parsed.flavour === 'alpine' ? '-alpine' : ''}, or set NATS_SERVER_VERSION there and run bash scripts/nats-server-tool.sh`,
    };
  return { flavour: parsed.flavour };
}

export interface NatsImageOptions {
  /** The folder `writeNatsImage` filled. */
  dir: string;
  /** The version of the binary in it (NATS_SERVER_VERSION). */
  version: string;
  /** This machine's PATH (after the image's own folder: `sh` and the like for exec probes). */
  hostPath: string;
}

/** One flavour as a local image: its folder stands for `/`, its files mapped, its folder first on PATH. Pure. */
export function natsFlavourImage(flavour: NatsFlavour, o: NatsImageOptions): LocalImage {
  const root = path.join(o.dir, flavour);
  const l = LAYOUT[flavour];
  const files: Record<string, string> = {
    [`/${l.binary}`]: path.join(root, l.binary),
    [`/${l.config}`]: path.join(root, l.config),
  };
  if (l.entrypoint) files[`/${l.entrypoint}`] = path.join(root, l.entrypoint);
  const binDir = path.join(root, l.binDir);
  return {
    repository: NATS_REPOSITORY,
    root,
    files,
    config:
      flavour === 'scratch'
        ? {
            workdir: '/',
            env: { PATH: `${binDir}:${o.hostPath}` },
            entrypoint: ['/nats-server'],
            cmd: ['--config', 'nats-server.conf'],
          }
        : {
            workdir: '/',
            env: { PATH: `${binDir}:${o.hostPath}` },
            entrypoint: ['docker-entrypoint.sh'],
            cmd: ['nats-server', '--config', '/etc/nats/nats-server.conf'],
          },
  };
}

/** The official `nats` image: each reference's tag picks its flavour, or is refused. Pure. */
export function natsImage(o: NatsImageOptions): LocalImage {
  const flavours = { scratch: natsFlavourImage('scratch', o), alpine: natsFlavourImage('alpine', o) };
  return {
    ...flavours.scratch,
    variant(tag) {
      const v = natsVariant(tag, o.version);
      return 'problem' in v ? v : flavours[v.flavour];
    },
  };
}

/** Writes the image's folder: each flavour's link to the binary, its default config and entrypoint. */
export function writeNatsImage(dir: string, binary: string): void {
  rmSync(dir, { recursive: true, force: true });
  for (const flavour of ['scratch', 'alpine'] as const) {
    const root = path.join(dir, flavour);
    const l = LAYOUT[flavour];
    for (const f of [l.binary, l.config, l.entrypoint])
      if (f) mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    symlinkSync(binary, path.join(root, l.binary));
    writeFileSync(path.join(root, l.config), NATS_DEFAULT_CONFIG, { mode: 0o644 });
    if (l.entrypoint) {
      writeFileSync(path.join(root, l.entrypoint), NATS_ENTRYPOINT_SCRIPT);
      chmodSync(path.join(root, l.entrypoint), 0o755);
    }
  }
}

/**
 * Adds the official `nats` image to `images` (its folder written under `dir`), unless a `--image nats=FOLDER`
 * (in any spelling of the repository) already stands for it.
 */
export function addNatsImage(
  images: Map<string, LocalImage>,
  o: { dir: string; binary: string; version: string; hostPath: string },
): void {
  if (findImage(images, NATS_REPOSITORY)) return;
  writeNatsImage(o.dir, o.binary);
  images.set(NATS_REPOSITORY, natsImage(o));
}
