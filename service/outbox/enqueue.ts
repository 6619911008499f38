import { PoolClient } from 'pg';

/** Where an outbox message goes: the relay maps each destination to a queue URL. */
export type OutboxDestination = 'order-events' | 'payment-retry';

/**
 * The head of every outbox insert, followed by a VALUES or SELECT of (destination,
 * payload). Statements that record an outcome and its message together (one statement,
 * see service/orders/outcome.ts) use it as a data-modifying CTE.
 */
export const OUTBOX_INSERT = 'INSERT INTO outbox (destination, payload)';

/** Adds a message to the transactional outbox; the relay publishes it after commit. */
export async function enqueue(
  db: PoolClient,
  destination: OutboxDestination,
  payload: Record<string, unknown>,
): Promise<void> {
  await db.query(`${OUTBOX_INSERT} VALUES ($1, $2)`, [destination, payload]);
}
