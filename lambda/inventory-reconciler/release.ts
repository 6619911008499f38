import type { ClientBase } from 'pg';
import { statement } from '../../service/db/statement';
import { lockOrderInventory, restockOnce } from '../../service/orders/outcome';
import { OUTBOX_INSERT } from '../../service/outbox/enqueue';

/**
 * The oldest PENDING_PAYMENT orders untouched for longer than the hold ($1 ms), after the
 * key ($3, $4) of the previous batch (keyset pagination: an order the fence skipped is
 * not read again by the same run), at most $2. No lock: the fence decides. The key's time
 * travels as text: a JavaScript Date would cut PostgreSQL's microseconds, and the rows
 * of the same millisecond would be read again.
 */
const CANDIDATES = statement(
  'inventory-reconciler-candidates',
  `
    SELECT o.id, o.updated_at::text AS cursor FROM orders o
     WHERE o.status = 'PENDING_PAYMENT'
       AND o.updated_at < now() - $1::float8 * interval '1 millisecond'
       AND ($3::timestamptz IS NULL OR (o.updated_at, o.id) > ($3::timestamptz, $4::uuid))
     ORDER BY o.updated_at, o.id
     LIMIT $2`,
);

/**
 * Cancels one order and releases its reservation, in one statement (atomic without
 * BEGIN/COMMIT), with the service's compensation (service/orders/outcome.ts):
 *
 * - `returned`: the order's inventory rows locked in SKU order ({@link lockOrderInventory}),
 *   the lock order of every checkout, so a cancellation and a checkout cannot deadlock;
 * - `fence`: the order, locked, only while it is still PENDING_PAYMENT, untouched for
 *   longer than the hold, and no PaymentDeferred for it still waits in the outbox (the
 *   relay is behind: its message has not even reached the queue). `SKIP LOCKED`: an order
 *   whose row another transaction holds (the payment-retry worker holds it while the
 *   gateway charges it, or another reconciler run cancels it) is left alone, never waited
 *   for. Under READ COMMITTED a row changed by a transaction that committed after this
 *   statement began is read again and the conditions checked on its new version, so an
 *   order charged, declined or cancelled meanwhile drops out of the fence;
 * - through the fence only: CANCELLED (and `released_at`, unless already set), the units
 *   back to stock only while `released_at` was unset ({@link restockOnce}: a reservation
 *   goes back once, whoever releases it), and an `OrderCancelled` event for order-events.
 *
 * Returns the cancelled order (nothing when the fence was empty) and the units released.
 */
const CANCEL = statement(
  'inventory-reconciler-cancel',
  `
    WITH returned AS MATERIALIZED (${lockOrderInventory('$1::uuid', 'true')}
    ),
    fence AS MATERIALIZED (
      SELECT o.id, o.released_at IS NULL AS unreleased, o.customer_id, o.amount_cents, o.currency,
             o.updated_at
        FROM orders o
       WHERE (SELECT count(*) FROM returned) >= 0
         AND o.id = $1::uuid AND o.status = 'PENDING_PAYMENT'
         AND o.updated_at < now() - $2::float8 * interval '1 millisecond'
         AND NOT EXISTS (
               SELECT FROM outbox x
                WHERE x.destination = 'payment-retry' AND x.published_at IS NULL AND x.parked_at IS NULL
                  AND x.payload->>'orderId' = o.id::text)
         FOR UPDATE SKIP LOCKED
    ),
    cancelled AS (
      UPDATE orders o
         SET status = 'CANCELLED', released_at = coalesce(o.released_at, now()), updated_at = now()
        FROM fence f
       WHERE o.id = f.id
    ),
    restocked AS (${restockOnce('true')}
    ),
    queued AS (
      ${OUTBOX_INSERT}
      SELECT 'order-events',
             jsonb_build_object('type', 'OrderCancelled', 'orderId', f.id, 'customerId', f.customer_id,
                                'amountCents', f.amount_cents, 'currency', f.currency, 'reason', $3::text,
                                'pendingSince', f.updated_at, 'items', l.items)
        FROM fence f,
             LATERAL (SELECT jsonb_agg(jsonb_build_object('sku', oi.sku, 'quantity', oi.quantity) ORDER BY oi.sku)
                        AS items
                        FROM order_items oi WHERE oi.order_id = f.id) l
    )
    SELECT f.id,
           CASE WHEN f.unreleased
                THEN (SELECT coalesce(sum(oi.quantity), 0) FROM order_items oi WHERE oi.order_id = f.id)
                ELSE 0 END::int AS units
      FROM fence f`,
);

/** One order this run cancelled. */
export interface CancelledOrder {
  readonly orderId: string;
  /** Units put back in stock: 0 when the reservation had already been released. */
  readonly unitsReleased: number;
}

/** What releasing came to. */
export interface ReleaseResult {
  readonly cancelled: CancelledOrder[];
  /** Orders past the hold that the fence left alone (held by another transaction, message still in the outbox, changed meanwhile). */
  readonly skipped: number;
  /** False when the run stopped at its deadline with orders left to look at. */
  readonly complete: boolean;
}

/** How {@link releaseExpiredOrders} runs. */
export interface ReleaseOptions {
  /** Milliseconds a PENDING_PAYMENT order may wait untouched. */
  readonly holdMs: number;
  /** Orders read per batch. */
  readonly batchSize: number;
  /** Epoch milliseconds after which no further cancellation is started. */
  readonly deadline: number;
  /** The `reason` of each `OrderCancelled` event. */
  readonly reason: string;
  /** Told about each cancellation as it commits (for the log). */
  readonly onCancelled?: (order: CancelledOrder) => void;
  readonly now?: () => number;
}

/**
 * Cancels every PENDING_PAYMENT order untouched for longer than the hold and releases its
 * reservation, oldest first, one statement per order ({@link CANCEL}). Safe to run while
 * another run does the same, and while checkouts and the payment-retry worker run: each
 * order is cancelled and its units released at most once, and never while another
 * transaction holds the order.
 */
export async function releaseExpiredOrders(db: ClientBase, options: ReleaseOptions): Promise<ReleaseResult> {
  const now = options.now ?? Date.now;
  const cancelled: CancelledOrder[] = [];
  let skipped = 0;
  let after: { cursor: string; id: string } | undefined;
  for (;;) {
    if (now() >= options.deadline) return { cancelled, skipped, complete: false };
    const { rows } = await db.query<{ id: string; cursor: string }>(CANDIDATES.text, [
      options.holdMs,
      options.batchSize,
      after?.cursor ?? null,
      after?.id ?? null,
    ]);
    for (const [i, row] of rows.entries()) {
      if (now() >= options.deadline) {
        return { cancelled, skipped: skipped + rows.length - i, complete: false };
      }
      const result = await db.query<{ id: string; units: number }>(CANCEL.text, [
        row.id,
        options.holdMs,
        options.reason,
      ]);
      const done = result.rows[0];
      if (done) {
        const order = { orderId: done.id, unitsReleased: done.units };
        cancelled.push(order);
        options.onCancelled?.(order);
      } else {
        skipped++;
      }
    }
    if (rows.length < options.batchSize) return { cancelled, skipped, complete: true };
    const last = rows[rows.length - 1];
    after = { cursor: last.cursor, id: last.id };
  }
}
