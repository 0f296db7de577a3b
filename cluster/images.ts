/**
 * The local "images" of `fnmesh cluster`: an image reference names a folder of this machine that stands
 * for the image's file system at its WORKDIR, and the Dockerfile that describes it (WORKDIR, ENV,
 * ENTRYPOINT, CMD). No image is built or pulled: the folder is what the Dockerfile would copy in (for the
 * fnmesh image and the TypeScript examples, the checkout with its `dist/`).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../common/errors';
import { readImageConfig, type ImageConfig } from './dockerfile';

export interface LocalImage {
  /** The repository part of the reference (no tag or digest). */
  repository: string;
  /** The folder that stands for the image's WORKDIR. */
  root: string;
  /** The Dockerfile its config was read from (none for an image defined in code: cluster/nats-image.ts). */
  dockerfile?: string;
  config: ImageConfig;
  /** Absolute paths inside the image that stand for files of this machine: an argv element naming one is mapped. */
  files?: Readonly<Record<string, string>>;
  /**
   * For an image that stands for one release of a program (the official `nats` image): the variant that a
   * reference's tag names, or why that tag cannot run here (another version). Without it every tag runs the
   * same folder.
   */
  variant?(tag: string | undefined, digest: string | undefined): LocalImage | { problem: string };
}

export type LocalImages = ReadonlyMap<string, LocalImage>;

/** The images this repository defines: the fnmesh image (gateway, sidecar, operator) and the examples. */
export const BUILT_IN_IMAGES: ReadonlyArray<{ repository: string; dockerfile: string; root: string }> = [
  { repository: 'ghcr.io/fnmesh/fnmesh', dockerfile: 'Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-greeter', dockerfile: 'examples/greeter/Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-authz', dockerfile: 'examples/authz/Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-text', dockerfile: 'examples/text/Dockerfile', root: 'examples/text' },
];

/** An image reference's parts: `repository[:tag][@digest]` (a `:` before the last `/` is a registry's port). */
export function parseImageReference(ref: string): { repository: string; tag?: string; digest?: string } {
  const at = ref.indexOf('@');
  const noDigest = at >= 0 ? ref.slice(0, at) : ref;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  const out: { repository: string; tag?: string; digest?: string } = {
    repository: colon > slash ? noDigest.slice(0, colon) : noDigest,
  };
  if (colon > slash) out.tag = noDigest.slice(colon + 1);
  if (at >= 0) out.digest = ref.slice(at + 1);
  return out;
}

/** The repository of an image reference: without `@digest` and without a `:tag` after the last `/`. */
export function imageRepository(ref: string): string {
  return parseImageReference(ref).repository;
}

/**
 * A repository as Docker names it in full: Docker Hub's short forms expanded (`nats`, `library/nats`,
 * `index.docker.io/library/nats` and `docker.io/nats` are all `docker.io/library/nats`). The first part is a
 * registry when it has a `.` or a `:` or is `localhost`.
 */
export function canonicalRepository(repository: string): string {
  const parts = repository.split('/');
  const first = parts[0]!;
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (hasRegistry && first !== 'docker.io' && first !== 'index.docker.io' && first !== 'registry-1.docker.io')
    return repository;
  const path = hasRegistry ? parts.slice(1) : parts;
  return `docker.io/${path.length === 1 ? 'library/' : ''}${path.join('/')}`;
}

/**
 * `REPOSITORY=FOLDER` (the folder holds the Dockerfile and stands for the image's WORKDIR), as given to
 * `fnmesh cluster --image`. Pure.
 */
export function parseImageFlag(value: string, cwd: string): { repository: string; dockerfile: string; root: string } {
  const i = value.indexOf('=');
  const repository = i > 0 ? imageRepository(value.slice(0, i).trim()) : '';
  const folder = i > 0 ? value.slice(i + 1).trim() : '';
  if (!repository || !folder) {
    throw new ConfigError(
      `--image "${value}" is not valid: write IMAGE=FOLDER, for example ghcr.io/me/hello=./hello (FOLDER holds its Dockerfile)`,
    );
  }
  const root = path.resolve(cwd, folder);
  return { repository, root, dockerfile: path.join(root, 'Dockerfile') };
}

/** Reads each Dockerfile; throws naming the file when one cannot be read. */
export function loadImages(
  repoRoot: string,
  entries: ReadonlyArray<{ repository: string; dockerfile: string; root: string }>,
): Map<string, LocalImage> {
  const images = new Map<string, LocalImage>();
  for (const e of entries) {
    const dockerfile = path.resolve(repoRoot, e.dockerfile);
    let text: string;
    try {
      text = readFileSync(dockerfile, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `cannot read ${dockerfile} for image ${e.repository}: ${(err as Error).message}; pass --image ${e.repository}=FOLDER with a folder that holds its Dockerfile`,
      );
    }
    let config: ImageConfig;
    try {
      config = readImageConfig(text);
    } catch (err) {
      throw new ConfigError(`${dockerfile}: ${(err as Error).message}`);
    }
    images.set(e.repository, { repository: e.repository, root: path.resolve(repoRoot, e.root), dockerfile, config });
  }
  return images;
}

/** The image for a reference's repository (in any of Docker Hub's spellings), or undefined. */
export function findImage(images: LocalImages, ref: string): LocalImage | undefined {
  const repository = imageRepository(ref);
  const exact = images.get(repository);
  if (exact) return exact;
  const wanted = canonicalRepository(repository);
  for (const [key, image] of images) if (canonicalRepository(key) === wanted) return image;
  return undefined;
}

/**
 * The image a reference runs: undefined when no local image has its repository, `{ problem }` when the image
 * has it but cannot run that tag (cluster/nats-image.ts: another version than the one built here).
 */
export function resolveImage(images: LocalImages, ref: string): LocalImage | { problem: string } | undefined {
  const image = findImage(images, ref);
  if (!image?.variant) return image;
  const { tag, digest } = parseImageReference(ref);
  return image.variant(tag, digest);
}

/**
 * An argv element that names a file the image stands for (`files`), mapped to that file of this machine, or
 * a path under the image's WORKDIR, mapped to the same path under its folder.
 */
export function mapImagePath(image: LocalImage, arg: string): string {
  const file = image.files && Object.hasOwn(image.files, arg) ? image.files[arg] : undefined;
  if (file !== undefined) return file;
  const workdir = image.config.workdir.replace(/\/+$/, '') || '/';
  if (workdir === '/') return arg;
  if (arg === workdir) return image.root;
  if (arg.startsWith(`${workdir}/`)) return path.join(image.root, arg.slice(workdir.length + 1));
  return arg;
}
