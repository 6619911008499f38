import { Pool, PoolClient } from 'pg';
import { DatabaseConfig } from '../config';
import { ConnectionDependencies, connectionConfig } from './connection';
import { nameStatementsOn } from './statement';

/** Session settings of a pool that the service's configuration does not carry. */
export interface PoolSessionOptions {
  /**
   * `application_name`: who the sessions are in `pg_stat_activity` and the PostgreSQL logs.
   *
   * @default 'checkout-service'
   */
  readonly applicationName?: string;
  /**
   * `idle_in_transaction_session_timeout`: PostgreSQL ends a session that idles this long
   * inside a transaction (its locks go with it). A caller that waits on something else
   * inside a transaction (the payment-retry worker holds its order's row lock while the
   * gateway answers) sets it above that wait.
   *
   * @default 2 x DB_STATEMENT_TIMEOUT_MS
   */
  readonly idleInTransactionTimeoutMs?: number;
}

/**
 * The connection pool. Its size is the database bulkhead: a request that cannot get a
 * connection within DB_CONNECT_TIMEOUT_MS fails fast instead of queueing forever.
 *
 * Nothing here pins an RDS Proxy session: `statement_timeout`,
 * `idle_in_transaction_session_timeout` and `application_name` are startup parameters,
 * sent in the startup packet (not as `SET` statements, which do pin); the service issues
 * no `SET` at all, and its statements are unnamed unless DB_NAMED_STATEMENTS is true
 * (service/db/statement.ts). The one session-level state it ever takes is the
 * migration lock (service/db/migrations.ts).
 *
 * @param deps - lets a test inject the IAM token signer
 * @param session - another `application_name` or idle-in-transaction timeout
 */
export function createPool(
  config: DatabaseConfig,
  deps: ConnectionDependencies = {},
  session: PoolSessionOptions = {},
): Pool {
  const pool = new Pool({
    ...connectionConfig(config.database, deps),
    max: config.DB_POOL_SIZE,
    connectionTimeoutMillis: config.DB_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: config.DB_STATEMENT_TIMEOUT_MS,
    query_timeout: config.DB_STATEMENT_TIMEOUT_MS + 1_000,
    idle_in_transaction_session_timeout:
      session.idleInTransactionTimeoutMs ?? config.DB_STATEMENT_TIMEOUT_MS * 2,
    application_name: session.applicationName ?? 'checkout-service',
  });
  // A dropped idle connection (database restart, failover) must not crash the process;
  // the pool discards the client and the next query opens a new one.
  pool.on('error', () => undefined);
  if (config.DB_NAMED_STATEMENTS) nameStatementsOn(pool);
  return pool;
}

/**
 * Runs work on a dedicated client. While checked out, a client whose connection drops
 * between queries emits 'error' with nobody listening, which would crash the process
 * (pg attaches its own listener only to idle clients); the listener here absorbs it and
 * the client is destroyed instead of returned to the pool.
 *
 * @param options.discard - close the connection afterwards instead of returning it to the
 * pool: for work that leaves session state behind (an RDS Proxy session stays pinned
 * until its connection ends)
 */
export async function withClient<T>(
  pool: Pool,
  work: (db: PoolClient) => Promise<T>,
  options: { discard?: boolean } = {},
): Promise<T> {
  const db = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  db.on('error', onError);
  try {
    return await work(db);
  } catch (err) {
    broken ??= err as Error;
    throw err;
  } finally {
    db.off('error', onError);
    db.release(broken ?? options.discard);
  }
}
