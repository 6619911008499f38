import { Pool } from 'pg';
import { ServiceConfig } from '../config';

/**
 * The connection pool. Its size is the database bulkhead: a request that cannot get a
 * connection within DB_CONNECT_TIMEOUT_MS fails fast instead of queueing forever.
 */
export function createPool(config: ServiceConfig): Pool {
  const pool = new Pool({
    connectionString: config.DATABASE_URL,
    max: config.DB_POOL_SIZE,
    connectionTimeoutMillis: config.DB_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    statement_timeout: config.DB_STATEMENT_TIMEOUT_MS,
    query_timeout: config.DB_STATEMENT_TIMEOUT_MS + 1_000,
    idle_in_transaction_session_timeout: config.DB_STATEMENT_TIMEOUT_MS * 2,
    application_name: 'checkout-service',
  });
  // A dropped idle connection (database restart, failover) must not crash the process;
  // the pool discards the client and the next query opens a new one.
  pool.on('error', () => undefined);
  return pool;
}
