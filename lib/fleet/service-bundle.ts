import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AssetHashType, DockerImage } from 'aws-cdk-lib';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { buildSync } from 'esbuild';
import { Construct } from 'constructs';

/** The repository root (lib/fleet/ is two levels down). */
const REPO_ROOT = resolve(__dirname, '..', '..');

/**
 * The bundle's files: `<name>.js` (and its source map) from each entry point. The fleet
 * runs `service.js`; `migrate.js` is there for an operator to apply migrations from an
 * instance (docs/fleet.md); `fakes.js` runs one fake dependency in sandbox mode.
 */
export const SERVICE_BUNDLE_ENTRY_POINTS: Readonly<Record<string, string>> = {
  service: 'service/main.ts',
  migrate: 'service/migrate.ts',
  fakes: 'service/fakes/serve.ts',
};

/**
 * The Node.js the bundle targets: the fleet installs Node.js 22 from Amazon Linux 2023
 * (`nodejs22`), so esbuild may emit anything Node.js 22 runs.
 */
export const SERVICE_BUNDLE_TARGET = 'node22';

/**
 * Bundles the service with the local esbuild (never Docker): one CommonJS file per entry
 * point, dependencies inlined (`pg-native` stays out: `pg` only loads it on request), with
 * source maps so stack traces in the logs name TypeScript lines (`--enable-source-maps`).
 *
 * @throws when esbuild reports an error; the message lists them
 */
export function buildServiceBundle(outdir: string, root: string = REPO_ROOT): void {
  const result = buildSync({
    entryPoints: Object.fromEntries(
      Object.entries(SERVICE_BUNDLE_ENTRY_POINTS).map(([name, file]) => [name, join(root, file)]),
    ),
    outdir,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: SERVICE_BUNDLE_TARGET,
    external: ['pg-native'],
    sourcemap: true,
    // The maps locate TypeScript lines; the sources themselves stay out (a third of the size).
    sourcesContent: false,
    legalComments: 'none',
    logLevel: 'silent',
    absWorkingDir: root,
  });
  if (result.errors.length > 0) {
    throw new Error(
      `esbuild could not bundle the checkout service:\n${result.errors.map((e) => `  - ${e.text}`).join('\n')}`,
    );
  }
}

/**
 * One bundle per process and root: every stack (and every test app) of a synth stages the
 * same files, and esbuild need not run once per stack.
 */
const builtBundles = new Map<string, string>();

function cachedBundle(root: string): string {
  let dir = builtBundles.get(root);
  if (!dir) {
    dir = mkdtempSync(join(tmpdir(), 'resilient-shop-service-bundle-'));
    buildServiceBundle(dir, root);
    builtBundles.set(root, dir);
  }
  return dir;
}

/**
 * The service bundle as an S3 asset (a zip of the bundle's files), built at synth by the
 * local esbuild. The asset hash is the hash of the output, so a change in any inlined
 * dependency (not only in `service/`) changes the launch template and rolls out through
 * an instance refresh.
 */
export function serviceBundleAsset(scope: Construct, id: string, root: string = REPO_ROOT): s3assets.Asset {
  return new s3assets.Asset(scope, id, {
    path: join(root, 'service'),
    assetHashType: AssetHashType.OUTPUT,
    bundling: {
      // Required by the type, never pulled or run: local bundling always succeeds or throws.
      image: DockerImage.fromRegistry('local-esbuild-only'),
      local: {
        tryBundle(outputDir: string): boolean {
          cpSync(cachedBundle(root), outputDir, { recursive: true });
          return true;
        },
      },
    },
  });
}
