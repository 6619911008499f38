/**
 * Replaces asset hashes (64 hex characters, alone or inside asset file names) in
 * snapshots, so a dependency bump that changes bundled code does not churn them.
 */
const HAS_ASSET_HASH = /[0-9a-f]{64}/;
const ASSET_HASHES = /[0-9a-f]{64}/g;

module.exports = {
  test: (value: unknown): boolean => typeof value === 'string' && HAS_ASSET_HASH.test(value),
  serialize: (value: string): string => JSON.stringify(value.replace(ASSET_HASHES, '[ASSET HASH]')),
};
