/**
 * `npm run db:migrate`: applies pending migrations with the service's connection
 * settings, then exits. The service's own user (`checkout`) may not run DDL, so this is
 * how a release's migrations reach the database, as the schema owner:
 *
 *   DATABASE_URL=postgres://shop_admin@host:5432/postgres npm run db:migrate
 *   DB_IAM_AUTH=true DB_HOST=<proxy endpoint> AWS_REGION=<region> DB_USER=shop_admin npm run db:migrate
 *
 * Only the database variables are read (see service/db/settings.ts); DB_STATEMENT_TIMEOUT_MS
 * bounds each statement. Exit status: 0 applied or nothing pending, 78 bad environment,
 * 1 migrations failed (nothing of the failed migration is kept).
 */
import { ServiceConfigError, loadDatabaseConfig } from './config';
import { MigrationsNotAppliedError, migrate } from './db/migrations';
import { createPool } from './db/pool';

async function main(): Promise<void> {
  let config;
  try {
    config = loadDatabaseConfig();
  } catch (err) {
    if (err instanceof ServiceConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const pool = createPool({ ...config, DB_POOL_SIZE: 2 });
  try {
    const { rows } = await pool.query<{ user: string; database: string }>(
      'SELECT current_user AS user, current_database() AS database',
    );
    const target = `database ${rows[0].database} as ${rows[0].user}`;
    const applied = await migrate(pool);
    if (applied.length === 0) {
      process.stdout.write(`no pending migrations (${target})\n`);
    } else {
      for (const name of applied) process.stdout.write(`applied ${name}\n`);
      process.stdout.write(`${applied.length} migration(s) applied (${target})\n`);
    }
  } finally {
    await pool.end();
  }
}

main().catch((err) => {
  const detail =
    err instanceof MigrationsNotAppliedError ? err.message : ((err as Error).stack ?? String(err));
  process.stderr.write(`db:migrate failed: ${detail}\n`);
  process.exit(1);
});
