import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp, ShopStacks } from '../../lib/app';
import { AppConfig, loadConfig, parseConfig } from '../../lib/config';

export const ROOT = join(__dirname, '..', '..');

/** The feature flags cdk.json gives the real app, so tests synthesize the same templates. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(join(ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return { ...cdkJson.context };
}

/** A shipped config file by name: `default` or `lean`. */
export function shippedConfig(name: 'default' | 'lean'): AppConfig {
  return loadConfig(join(ROOT, 'config', `${name}.json`));
}

/** Raw JSON of a shipped config, for tests that break one field. */
export function rawConfig(name: 'default' | 'lean' = 'default'): Record<string, unknown> {
  return JSON.parse(readFileSync(join(ROOT, 'config', `${name}.json`), 'utf8')) as Record<string, unknown>;
}

/** A config derived from a shipped one with some top-level fields replaced. */
export function configWith(overrides: Partial<AppConfig>, base: 'default' | 'lean' = 'default'): AppConfig {
  return parseConfig({ ...rawConfig(base), ...overrides }, `${base}+overrides`);
}

/**
 * A fresh App with cdk.json's feature flags and the metadata the CDK CLI asks for, so
 * the templates are the ones `cdk synth` writes (cfn-lint reads `aws:cdk:path`).
 */
export function newApp(): App {
  return new App({
    context: {
      ...cdkJsonContext(),
      'aws:cdk:enable-path-metadata': true,
      'aws:cdk:enable-asset-metadata': true,
      'aws:cdk:version-reporting': true,
    },
    outdir: mkdtempSync(join(tmpdir(), 'resilient-shop-')),
  });
}

/** Builds the whole app for a config (compliance packs registered, not yet synthesized). */
export function buildTestApp(config: AppConfig): { app: App; stacks: ShopStacks } {
  const app = newApp();
  return { app, stacks: buildApp(app, config) };
}
