import { Client } from 'pg';

/** Set by the global setup for every test file: `available`, or why PostgreSQL is not. */
export const POSTGRES_STATUS_VAR = 'SHOP_TEST_POSTGRES';

/** The server tests create their databases on; DATABASE_URL overrides. */
export const ADMIN_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Jest global setup: looks for PostgreSQL once, before any test file runs, and tells the
 * files through the environment (the workers inherit it). Without PostgreSQL the database
 * suites are reported as skipped, not passed; under CI=true its absence fails the run.
 */
export default async function globalSetup(): Promise<void> {
  const client = new Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    process.env[POSTGRES_STATUS_VAR] = 'available';
  } catch (err) {
    const message = `PostgreSQL is not reachable at ${ADMIN_DATABASE_URL} (${(err as Error).message})`;
    if (process.env.CI === 'true') {
      throw new Error(`${message}; CI=true requires it for the test/service suites`, { cause: err });
    }
    process.env[POSTGRES_STATUS_VAR] = message;
    process.stderr.write(
      `\nSKIPPED: ${message}. The database suites in test/service are reported as skipped; ` +
        'set DATABASE_URL or start PostgreSQL to run them.\n',
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}
