import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { ADMIN_DATABASE_URL, POSTGRES_STATUS_VAR } from './global-setup';

export { ADMIN_DATABASE_URL };

/**
 * Why PostgreSQL is unavailable, as the Jest global setup found; undefined when it is
 * available, or when the global setup did not run (the suite then fails loudly instead
 * of passing without having run).
 */
export function postgresUnavailableReason(): string | undefined {
  const status = process.env[POSTGRES_STATUS_VAR];
  return status === undefined || status === 'available' ? undefined : status;
}

/**
 * `describe` for a suite that needs PostgreSQL: its tests are reported as skipped (not
 * passed) when the global setup found no PostgreSQL. Put the suite's hooks inside it.
 */
export function describeWithPostgres(name: string, fn: () => void): void {
  (postgresUnavailableReason() === undefined ? describe : describe.skip)(name, fn);
}

function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
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

/**
 * Counts errors with the given SQLSTATE codes that PostgreSQL returns to any pg client
 * of this process (the service under test runs in it), including errors a caller then
 * retries and hides. `restore()` stops counting.
 */
export function countDatabaseErrors(codes: readonly string[]): { count(): number; restore(): void } {
  const proto = Client.prototype as unknown as { query: (...args: unknown[]) => unknown };
  const original = proto.query;
  let seen = 0;
  const check = (err: unknown) => {
    if (codes.includes((err as { code?: string } | null)?.code ?? '')) seen++;
  };
  proto.query = function (this: Client, ...args: unknown[]) {
    const callback = args[args.length - 1];
    if (typeof callback === 'function') {
      args[args.length - 1] = (err: unknown, ...rest: unknown[]) => {
        check(err);
        return (callback as (...a: unknown[]) => unknown)(err, ...rest);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result instanceof Promise) result.catch(check);
    return result;
  };
  return {
    count: () => seen,
    restore: () => {
      proto.query = original;
    },
  };
}
