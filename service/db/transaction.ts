import { Pool, PoolClient } from 'pg';
import { withClient } from './pool';

/**
 * SQLSTATEs after which PostgreSQL has rolled the whole transaction back and running it
 * again may succeed: serialization_failure and deadlock_detected.
 */
const CONFLICT_SQLSTATES: ReadonlySet<string> = new Set(['40001', '40P01']);

/** Whether an error is a serialization failure or a deadlock: nothing was committed, try again. */
export function isConflict(err: unknown): boolean {
  return CONFLICT_SQLSTATES.has((err as { code?: unknown } | null)?.code as string);
}

/** How {@link retryOnConflict} retries. */
export interface ConflictRetryOptions {
  /**
   * Runs in all, the first included.
   *
   * @default 4
   */
  readonly attempts?: number;
  /**
   * Upper bound of the first pause; each later one doubles it, and the pause is drawn at
   * random below the bound (full jitter), so that the transactions that collided do not
   * collide again.
   *
   * @default 10
   */
  readonly baseDelayMs?: number;
  /** Told about each retry (for a metric). */
  readonly onRetry?: (err: unknown, attempt: number) => void;
}

/**
 * Runs `work` (one statement, or a whole transaction) again when PostgreSQL aborted it
 * with a serialization failure or a deadlock, a bounded number of times with jitter.
 * Other errors, and the last conflict, propagate.
 *
 * Only for work whose failure leaves nothing behind: a single statement (atomic on its
 * own) or a transaction that `work` opens and commits itself. Side effects outside the
 * database happen again.
 */
export async function retryOnConflict<T>(
  work: () => Promise<T>,
  options: ConflictRetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 4;
  const baseDelayMs = options.baseDelayMs ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (attempt >= attempts || !isConflict(err)) throw err;
      options.onRetry?.(err, attempt);
      const boundMs = baseDelayMs * 2 ** (attempt - 1);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * boundMs));
    }
  }
}

/**
 * Runs `work` in a transaction on one pooled connection: BEGIN, work, COMMIT, or
 * ROLLBACK on any error. A serialization failure or deadlock runs the whole transaction
 * again (see {@link retryOnConflict}), so `work` must be safe to repeat: database work,
 * or side effects that tolerate a second run (an SQS send whose consumers dedupe).
 *
 * The checkout itself does not use this: each of its steps is one statement, atomic
 * without BEGIN/COMMIT round trips (see service/orders/).
 */
export async function inTransaction<T>(
  pool: Pool,
  work: (db: PoolClient) => Promise<T>,
  options: ConflictRetryOptions = {},
): Promise<T> {
  return retryOnConflict(
    () =>
      withClient(pool, async (db) => {
        await db.query('BEGIN');
        try {
          const result = await work(db);
          await db.query('COMMIT');
          return result;
        } catch (err) {
          await db.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      }),
    options,
  );
}
