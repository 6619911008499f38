import { Pool } from 'pg';
import { execute, statement } from '../db/statement';
import { OUTBOX_INSERT } from '../outbox/enqueue';

/**
 * One statement: orders PAYMENT_IN_PROGRESS for longer than $1 ms whose key no request
 * holds (its lease expired or was released), at most $2 of them, become PENDING_PAYMENT
 * with a PaymentDeferred message for payment-retry, and their keys get the reply a retry
 * of the checkout will be given (201 PENDING_PAYMENT). Orders and keys are locked with
 * SKIP LOCKED: the sweep never waits for a checkout (nor the checkout for it), and a
 * request that resumes the order at the same moment either wins the key first (the
 * sweep skips it) or finds it completed by the sweep (and replays its reply).
 */
const SWEEP = statement(
  'stuck-order-sweep',
  `
    WITH stuck AS MATERIALIZED (
      SELECT o.id, o.customer_id, o.amount_cents, o.currency, o.payment_token, k.key
        FROM orders o JOIN idempotency_keys k ON k.key = o.idempotency_key
       WHERE o.status = 'PAYMENT_IN_PROGRESS'
         AND o.updated_at < now() - $1::float8 * interval '1 millisecond'
         AND k.status_code IS NULL
         AND (k.locked_until IS NULL OR k.locked_until <= now())
       ORDER BY o.updated_at
       LIMIT $2
         FOR UPDATE OF o, k SKIP LOCKED
    ),
    deferred AS (
      UPDATE orders o SET status = 'PENDING_PAYMENT', updated_at = now() FROM stuck s WHERE o.id = s.id
    ),
    completed AS (
      UPDATE idempotency_keys k
         SET status_code = 201,
             response = jsonb_build_object('orderId', s.id, 'status', 'PENDING_PAYMENT',
                                           'recommendations', '[]'::jsonb,
                                           'degraded', jsonb_build_array('recommendations')),
             completed_at = now(), locked_until = NULL, lease_token = NULL
        FROM stuck s
       WHERE k.key = s.key
    ),
    queued AS (
      ${OUTBOX_INSERT}
      SELECT 'payment-retry',
             jsonb_build_object('type', 'PaymentDeferred', 'orderId', s.id, 'customerId', s.customer_id,
                                'amountCents', s.amount_cents, 'currency', s.currency,
                                'paymentToken', s.payment_token, 'cause', 'stuck-in-progress')
        FROM stuck s
    )
    SELECT count(*)::int AS deferred FROM stuck`,
);

/**
 * Defers orders stuck in PAYMENT_IN_PROGRESS (their request died after reserving, or gave
 * up after the gateway rejected it and was not retried) to the payment-retry queue. The
 * retry worker charges with the order id as idempotency key, so an order that was in
 * fact charged is not charged again. One statement per batch of `limit` orders.
 *
 * @returns how many orders were deferred
 */
export async function deferStuckOrders(pool: Pool, olderThanMs: number, limit = 100): Promise<number> {
  const { rows } = await execute<{ deferred: number }>(pool, SWEEP, [olderThanMs, limit]);
  return rows[0].deferred;
}
