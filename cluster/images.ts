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
  dockerfile: string;
  config: ImageConfig;
}

export type LocalImages = ReadonlyMap<string, LocalImage>;

/** The images this repository defines: the fnmesh image (gateway, sidecar, operator) and the examples. */
export const BUILT_IN_IMAGES: ReadonlyArray<{ repository: string; dockerfile: string; root: string }> = [
  { repository: 'ghcr.io/fnmesh/fnmesh', dockerfile: 'Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-greeter', dockerfile: 'examples/greeter/Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-authz', dockerfile: 'examples/authz/Dockerfile', root: '.' },
  { repository: 'ghcr.io/fnmesh/examples-text', dockerfile: 'examples/text/Dockerfile', root: 'examples/text' },
];

/** The repository of an image reference: without `@digest` and without a `:tag` after the last `/`. */
export function imageRepository(ref: string): string {
  const noDigest = ref.split('@')[0]!;
  const slash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > slash ? noDigest.slice(0, colon) : noDigest;
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

/** The image for a reference, or undefined. */
export function findImage(images: LocalImages, ref: string): LocalImage | undefined {
  return images.get(imageRepository(ref));
}

/** An argv element that names a path under the image's WORKDIR, mapped to the same path under its folder. */
export function mapImagePath(image: LocalImage, arg: string): string {
  const workdir = image.config.workdir.replace(/\/+$/, '') || '/';
  if (workdir === '/') return arg;
  if (arg === workdir) return image.root;
  if (arg.startsWith(`${workdir}/`)) return path.join(image.root, arg.slice(workdir.length + 1));
  return arg;
}
