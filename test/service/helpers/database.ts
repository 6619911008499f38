import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** The server tests create their databases on; DATABASE_URL overrides. */
export const ADMIN_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

/**
 * Whether PostgreSQL answers. Without it the suite is skipped with a message, except
 * under CI=true, where that is a failure.
 */
export async function postgresAvailable(): Promise<boolean> {
  const client = new Client({ connectionString: ADMIN_DATABASE_URL, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (err) {
    const message = `PostgreSQL is not reachable at ${ADMIN_DATABASE_URL} (${(err as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${message}; CI=true requires it`, { cause: err });
    process.stderr.write(`SKIPPED: ${message}. Set DATABASE_URL or start PostgreSQL to run these tests.\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A database of its own for one test file; drop() removes it. */
export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `shop_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: ADMIN_DATABASE_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = withDatabase(ADMIN_DATABASE_URL, name);
  const client = new Client({ connectionString: url });
  await client.connect();
  return {
    url,
    name,
    async query<T>(sql: string, params?: unknown[]) {
      return (await client.query(sql, params)).rows as T[];
    },
    async drop() {
      await client.end().catch(() => undefined);
      const dropper = new Client({ connectionString: ADMIN_DATABASE_URL });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
    },
  };
}
