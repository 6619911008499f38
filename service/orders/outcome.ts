import { Pool } from 'pg';
import { execute } from '../db/statement';
import { sqlFunction } from '../db/sql-function';
import { OUTBOX_INSERT, OutboxDestination } from '../outbox/enqueue';
import { ChargeOutcome } from '../payment-client';
import { Order } from './order';
import { CheckoutReply } from './replies';

/** A payment outcome that is recorded on the order (a rejected request is not: see checkout.ts). */
export type RecordableOutcome = Exclude<ChargeOutcome, { kind: 'rejected' }>;

/**
 * Compensation, part 1, as the body of a `MATERIALIZED` CTE: when `when` (an SQL boolean)
 * holds, the inventory rows of order `orderId` locked in SKU order, the lock order of the
 * claim (inventory, then key, then order), so that compensation and new checkouts cannot
 * deadlock. Shared with the payment-retry worker (lambda/payment-retry/settle.ts).
 */
export function lockOrderInventory(orderId: string, when: string): string {
  return `
      SELECT i.sku FROM inventory i
       WHERE ${when} AND i.sku IN (SELECT oi.sku FROM order_items oi WHERE oi.order_id = ${orderId})
       ORDER BY i.sku
         FOR UPDATE`;
}

/**
 * Compensation, part 2, as the body of a data-modifying CTE: when `when` holds, the units
 * of the order in the CTE `fence` (columns `id`, and `unreleased`: its `released_at` was
 * unset) go back to stock. Only while `released_at` was unset, and the same statement
 * sets it: a reservation goes back once, whoever releases it.
 */
export function restockOnce(when: string): string {
  return `
      UPDATE inventory i SET available = i.available + oi.quantity, updated_at = now()
        FROM order_items oi, fence f
       WHERE ${when} AND f.unreleased AND oi.order_id = f.id AND i.sku = oi.sku`;
}

/** What an order is, as far as the messages about its outcome go. */
export type OrderFacts = Pick<
  Order,
  'id' | 'customerId' | 'amountCents' | 'currency' | 'paymentToken' | 'items' | 'requestId'
>;

/** The status an outcome records, and the outbox message that announces it. */
export interface OutcomeRecord {
  readonly status: 'CONFIRMED' | 'PAYMENT_DECLINED' | 'PENDING_PAYMENT';
  readonly destination: OutboxDestination;
  readonly payload: Record<string, unknown>;
}

/**
 * What recording `outcome` writes, wherever it is recorded (the checkout, or the
 * payment-retry worker settling a deferred order):
 *
 * - charged: CONFIRMED with the charge id, OrderConfirmed to order-events;
 * - declined: PAYMENT_DECLINED, OrderPaymentDeclined to order-events (the reservation goes
 *   back to stock, see {@link restockOnce});
 * - deferred: PENDING_PAYMENT, PaymentDeferred (with the payment token) to payment-retry.
 *
 * Each message carries the order's `requestId` when it has one (the checkout request that
 * records the outcome), for tracing: docs/observability.md, "Tracing an order".
 */
export function outcomeRecord(order: OrderFacts, outcome: RecordableOutcome): OutcomeRecord {
  const event: {
    orderId: string;
    customerId: string;
    amountCents: number;
    currency: string;
    requestId?: string;
  } = {
    orderId: order.id,
    customerId: order.customerId,
    amountCents: order.amountCents,
    currency: order.currency,
  };
  // Optional in every consumer's schema (old messages have none): only when there is one.
  if (order.requestId !== undefined) event.requestId = order.requestId;
  switch (outcome.kind) {
    case 'charged':
      return {
        status: 'CONFIRMED',
        destination: 'order-events',
        payload: { type: 'OrderConfirmed', ...event, chargeId: outcome.chargeId, items: order.items },
      };
    case 'declined':
      return {
        status: 'PAYMENT_DECLINED',
        destination: 'order-events',
        payload: { type: 'OrderPaymentDeclined', ...event, reason: outcome.reason },
      };
    case 'deferred':
      return {
        status: 'PENDING_PAYMENT',
        destination: 'payment-retry',
        payload: {
          type: 'PaymentDeferred',
          ...event,
          paymentToken: order.paymentToken,
          cause: outcome.cause,
        },
      };
  }
}

/**
 * An order's outcome, its compensation, its outbox message and the reply under its key,
 * in one statement (one round trip, atomic without BEGIN/COMMIT), fenced:
 *
 * - `returned`: for a decline, the order's inventory rows locked in SKU order first,
 *   the lock order of the claim (inventory, then key, then order), so compensation and
 *   new checkouts cannot deadlock;
 * - `fence`: the key still held by this request's lease token with no reply stored, and
 *   the order still PAYMENT_IN_PROGRESS; both rows locked. Under READ COMMITTED a
 *   concurrent takeover or sweep that committed first is seen, and the fence is empty;
 * - everything else happens only through the fence: the status (and `released_at` for a
 *   decline), the units back to stock (only while `released_at` was unset: a reservation
 *   goes back once), the outbox message (the relay publishes it after commit), and the
 *   reply under the key, which frees it;
 * - the last SELECT returns the reply already stored under the key when the fence was
 *   empty (what the request that won stored), and nothing otherwise (no JSON to parse on
 *   the normal path).
 *
 * Stored as a function (service/db/sql-function.ts), planned once per database session:
 * the service sends `SELECT * FROM checkout_record_outcome_<hash>($1, ...)`, unnamed.
 */
export const RECORD = sqlFunction(
  'checkout-record-outcome',
  ['text', 'uuid', 'uuid', 'text', 'text', 'boolean', 'text', 'jsonb', 'int', 'jsonb'],
  'recorded boolean, status_code int, response jsonb',
  `
    WITH returned AS MATERIALIZED (${lockOrderInventory('$3', '$6::boolean')}
    ),
    fence AS MATERIALIZED (
      SELECT o.id, o.released_at IS NULL AS unreleased
        FROM idempotency_keys k JOIN orders o ON o.id = k.order_id
       WHERE (SELECT count(*) FROM returned) >= 0
         AND k.key = $1 AND k.lease_token = $2 AND k.status_code IS NULL
         AND o.id = $3 AND o.status = 'PAYMENT_IN_PROGRESS'
         FOR UPDATE
    ),
    recorded AS (
      UPDATE orders o
         SET status = $4, charge_id = $5, updated_at = now(),
             released_at = CASE WHEN $6::boolean THEN now() ELSE o.released_at END
        FROM fence f
       WHERE o.id = f.id
    ),
    restocked AS (${restockOnce('$6::boolean')}
    ),
    queued AS (
      ${OUTBOX_INSERT} SELECT $7, $8::jsonb FROM fence
    ),
    completed AS (
      UPDATE idempotency_keys k
         SET status_code = $9, response = $10, completed_at = now(), locked_until = NULL, lease_token = NULL
        FROM fence f
       WHERE k.key = $1
    )
    SELECT EXISTS (SELECT FROM fence) AS recorded, k.status_code, k.response
      FROM (VALUES (1)) AS one (x)
      LEFT JOIN idempotency_keys k ON k.key = $1 AND NOT EXISTS (SELECT FROM fence)`,
);

/** What recording came to. */
export type Recorded =
  | { readonly recorded: true }
  /**
   * This request no longer held the key (a retry took over its expired lease, or the
   * stuck-order sweep deferred the order): nothing was written. `stored` is the reply
   * the other one stored, if it had committed when this statement began.
   */
  | { readonly recorded: false; readonly stored: CheckoutReply | undefined };

/**
 * Records `outcome` for `order` with `reply` under its key, exactly once: see {@link RECORD}
 * for the statement and {@link outcomeRecord} for what each outcome writes.
 */
export async function recordOutcome(
  pool: Pool,
  order: Order,
  outcome: RecordableOutcome,
  reply: CheckoutReply,
): Promise<Recorded> {
  const { status, destination, payload } = outcomeRecord(order, outcome);
  const { rows } = await execute<{
    recorded: boolean;
    status_code: number | null;
    response: Record<string, unknown> | null;
  }>(pool, RECORD.call, [
    order.key,
    order.leaseToken,
    order.id,
    status,
    outcome.kind === 'charged' ? outcome.chargeId : null,
    outcome.kind === 'declined',
    destination,
    payload,
    reply.statusCode,
    reply.body,
  ]);
  const row = rows[0];
  if (row.recorded) return RECORDED;
  return {
    recorded: false,
    stored:
      row.status_code !== null && row.response !== null
        ? { statusCode: row.status_code, body: row.response }
        : undefined,
  };
}

const RECORDED: Recorded = { recorded: true };
