import type { DatabaseSettings } from '../../service/db/settings';
import { WorkerConfigError, integerEnv, requiredEnv } from '../shared/env';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The database settings of the worker, from the variables the fleet uses too: IAM auth
 * through RDS Proxy (`DB_IAM_AUTH=true`, `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, and
 * `AWS_REGION`, which Lambda sets), or `DATABASE_URL` for a run against a local
 * database. The result goes to the service's own `connectionConfig`
 * (service/db/connection.ts): an IAM token signed per connection, TLS verified against
 * the host name.
 *
 * Read here rather than with the service's `loadDatabaseConfig`, whose zod schema would
 * be 440 KB of the bundle for five variables (and nothing of service/db/settings.ts but
 * its types is imported, for the same reason). `DB_USER` is required: the construct
 * always sets the user it granted `rds-db:connect` for.
 *
 * @throws WorkerConfigError naming the variable and the fix
 */
export function readDatabaseSettings(env: Env): DatabaseSettings {
  const url = env.DATABASE_URL?.trim();
  const iam = env.DB_IAM_AUTH?.trim() === 'true';
  if (url && iam) {
    throw new WorkerConfigError('DATABASE_URL and DB_IAM_AUTH=true are two connection modes: set one');
  }
  if (url) {
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new WorkerConfigError('DATABASE_URL must be a postgres:// connection string');
    }
    return { mode: 'url', url };
  }
  if (!iam) {
    throw new WorkerConfigError(
      'DB_IAM_AUTH=true (with DB_HOST) is required, or DATABASE_URL for a local database',
    );
  }
  const host = requiredEnv(env, 'DB_HOST');
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host)) {
    throw new WorkerConfigError(`DB_HOST must be a host name, without scheme or port, got "${host}"`);
  }
  return {
    mode: 'iam',
    host,
    port: integerEnv(env, 'DB_PORT', 5432),
    database: env.DB_NAME?.trim() || 'postgres',
    user: requiredEnv(env, 'DB_USER'),
    region: requiredEnv(env, 'AWS_REGION'),
  };
}
