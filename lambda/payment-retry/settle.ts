/**
 * Charging one deferred order and recording what came of it: the worker's database and
 * gateway work, built from the checkout service's own modules (its statements, outbox,
 * compensation and event payloads, transaction helper and payment client), so that an
 * order settled here looks exactly like one settled by a checkout.
 */
import type { Pool } from 'pg';
import { execute, statement } from '../../service/db/statement';
import { ConflictRetryOptions, inTransaction } from '../../service/db/transaction';
import { OUTBOX_INSERT } from '../../service/outbox/enqueue';
import type { OrderLine } from '../../service/orders/order';
import {
  OrderFacts,
  RecordableOutcome,
  lockOrderInventory,
  outcomeRecord,
  restockOnce,
} from '../../service/orders/outcome';
import type { PaymentGateway } from '../../service/payment-client';
import { GatewayRejectedError, OrderNotFoundError, PaymentNotTakenError } from './errors';

/** What retrying a deferred order came to; stored as the idempotency record's result (no payment token). */
export type RetryOutcome =
  /** Charged: CONFIRMED with the charge id, OrderConfirmed in the outbox. */
  | { readonly kind: 'confirmed'; readonly orderId: string; readonly chargeId: string }
  /** Declined: PAYMENT_DECLINED, its reservation back to stock, OrderPaymentDeclined in the outbox. */
  | { readonly kind: 'declined'; readonly orderId: string; readonly reason: string }
  /**
   * No longer PENDING_PAYMENT when its row lock was taken (confirmed by a copy of this
   * message, released by the reconciler): neither charged nor compensated.
   */
  | { readonly kind: 'already-settled'; readonly orderId: string; readonly status: string };

/**
 * The order, locked for the rest of the transaction: `FOR UPDATE` waits for (at most a
 * statement timeout) and then excludes whoever else would settle it, another copy of the
 * message or the inventory reconciler. Read even when it is no longer PENDING_PAYMENT, to
 * tell "settled" from "unknown".
 */
const LOCK_ORDER = statement(
  'payment-retry-lock-order',
  `
    SELECT o.status, o.customer_id, o.amount_cents, o.currency, o.payment_token,
           (SELECT coalesce(jsonb_agg(jsonb_build_object('sku', oi.sku, 'quantity', oi.quantity) ORDER BY oi.sku),
                            '[]'::jsonb)
              FROM order_items oi WHERE oi.order_id = o.id) AS items
      FROM orders o
     WHERE o.id = $1
       FOR UPDATE OF o`,
);

/**
 * The outcome of a deferred order, its compensation and its outbox message in one
 * statement, fenced as the checkout's record is (service/orders/outcome.ts `RECORD`), with
 * the order's status as the fence (a deferred order's idempotency key already holds its
 * reply, so there is no lease to check):
 *
 * - `returned`: for a decline, the order's inventory rows locked in SKU order
 *   ({@link lockOrderInventory}, shared with the checkout);
 * - `fence`: the order, still PENDING_PAYMENT;
 * - everything else only through the fence: the status (and `released_at` for a decline),
 *   the units back to stock once ({@link restockOnce}, shared), the outbox message;
 * - the last SELECT says whether it was recorded, and the status the order had.
 */
const SETTLE = statement(
  'payment-retry-settle',
  `
    WITH returned AS MATERIALIZED (${lockOrderInventory('$1', '$4::boolean')}
    ),
    fence AS MATERIALIZED (
      SELECT o.id, o.released_at IS NULL AS unreleased
        FROM orders o
       WHERE (SELECT count(*) FROM returned) >= 0
         AND o.id = $1 AND o.status = 'PENDING_PAYMENT'
         FOR UPDATE
    ),
    recorded AS (
      UPDATE orders o
         SET status = $2, charge_id = $3, updated_at = now(),
             released_at = CASE WHEN $4::boolean THEN now() ELSE o.released_at END
        FROM fence f
       WHERE o.id = f.id
    ),
    restocked AS (${restockOnce('$4::boolean')}
    ),
    queued AS (
      ${OUTBOX_INSERT} SELECT $5, $6::jsonb FROM fence
    )
    SELECT EXISTS (SELECT FROM fence) AS recorded, (SELECT o.status FROM orders o WHERE o.id = $1) AS status`,
);

interface LockedOrderRow {
  status: string;
  customer_id: string;
  amount_cents: string;
  currency: string;
  payment_token: string;
  items: OrderLine[];
}

/** What {@link retryDeferredPayment} works with. */
export interface RetryDeps {
  /** The service's database (its pool, through RDS Proxy with IAM auth in AWS). */
  readonly pool: Pool;
  /** The service's payment client: timeout, retries with full jitter, breaker, bulkhead. */
  readonly gateway: PaymentGateway;
  /** Told when a deadlock or serialization failure runs the transaction again (for a metric). */
  readonly onConflictRetry?: ConflictRetryOptions['onRetry'];
}

/**
 * Charges a PENDING_PAYMENT order and settles it, in one transaction on one connection:
 *
 * 1. the order's row lock ({@link LOCK_ORDER}); an order that is no longer PENDING_PAYMENT
 *    is left alone (`already-settled`): not charged, not compensated;
 * 2. the charge, through the service's client with the order id as the gateway's
 *    idempotency key, for the amount, currency and token of the order row;
 * 3. the fenced settling statement ({@link SETTLE}); COMMIT.
 *
 * Why the lock is held across the charge (the checkout deliberately holds nothing while it
 * pays): the checkout's lease on the idempotency key ended when it stored its reply, so
 * the order row is all there is to fence on, and a fence checked only after the charge
 * cannot stop the reconciler releasing the order while the customer is being charged for
 * it. Held, the lock makes "charge" and "release" mutually exclusive. Its cost is one
 * connection and one locked order row per record in flight (the worker's reserved
 * concurrency x its batch size at most), and never an inventory row: those are locked
 * only by the settling statement, for a decline, for the length of that statement.
 * PostgreSQL ends a session left idle in its transaction after
 * `idleInTransactionTimeoutMs()` (lambda/payment-retry/contract.ts), longer than any charge.
 *
 * A deadlock or serialization failure runs the whole transaction again (the service's
 * `inTransaction`), the charge included: the gateway answers a repeated idempotency key
 * with the charge it already took. A crash after the charge and before COMMIT does the
 * same on the message's next delivery.
 *
 * @throws PaymentNotTakenError (transient) when the client deferred the payment again
 * @throws GatewayRejectedError (permanent for this configuration) when the gateway refused the request
 * @throws OrderNotFoundError (permanent) when the order does not exist
 */
export async function retryDeferredPayment(deps: RetryDeps, orderId: string): Promise<RetryOutcome> {
  return inTransaction(
    deps.pool,
    async (db) => {
      const { rows } = await execute<LockedOrderRow>(db, LOCK_ORDER, [orderId]);
      if (rows.length === 0) throw new OrderNotFoundError(orderId);
      const row = rows[0];
      if (row.status !== 'PENDING_PAYMENT') return { kind: 'already-settled', orderId, status: row.status };
      const order: OrderFacts = {
        id: orderId,
        customerId: row.customer_id,
        amountCents: Number(row.amount_cents),
        currency: row.currency,
        paymentToken: row.payment_token,
        items: row.items,
      };
      const charge = await deps.gateway.charge({
        orderId,
        amountCents: order.amountCents,
        currency: order.currency,
        paymentToken: order.paymentToken,
      });
      let outcome: RecordableOutcome;
      switch (charge.kind) {
        case 'deferred':
          throw new PaymentNotTakenError(orderId, charge.cause);
        case 'rejected':
          throw new GatewayRejectedError(orderId, charge.error.status, { cause: charge.error });
        default:
          outcome = charge;
      }
      const record = outcomeRecord(order, outcome);
      const settled = await execute<{ recorded: boolean; status: string }>(db, SETTLE, [
        orderId,
        record.status,
        outcome.kind === 'charged' ? outcome.chargeId : null,
        outcome.kind === 'declined',
        record.destination,
        record.payload,
      ]);
      if (!settled.rows[0].recorded) {
        // Cannot happen while the row lock is held; if it does, roll back and let the
        // message's next delivery find out what the order became.
        throw new Error(
          `order ${orderId} was ${settled.rows[0].status} when its outcome was recorded, although its row was locked`,
        );
      }
      return outcome.kind === 'charged'
        ? { kind: 'confirmed', orderId, chargeId: outcome.chargeId }
        : { kind: 'declined', orderId, reason: outcome.reason };
    },
    { onRetry: deps.onConflictRetry },
  );
}
