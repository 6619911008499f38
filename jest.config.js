/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Transpile only: `npm run build` / `npm run lint` type-check the whole tree once.
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  // No test may look for real AWS credentials or reach instance metadata.
  setupFiles: ['<rootDir>/test/helpers/offline-aws-env.ts'],
  // Finds PostgreSQL once: without it the database suites are skipped (failed under CI=true).
  globalSetup: '<rootDir>/test/service/helpers/global-setup.ts',
  snapshotSerializers: ['<rootDir>/test/helpers/asset-hash-serializer.ts'],
  testTimeout: 120_000,
};
