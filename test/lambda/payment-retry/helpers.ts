/**
 * Shared by the payment-retry tests that run on real PostgreSQL: orders the checkout
 * service itself deferred (its harness, with the fake gateway hanging), and the worker's
 * pool and gateway client built as lambda/payment-retry/index.ts builds them.
 */
import { Pool } from 'pg';
import {
  PAYMENT_RETRY_DATABASE,
  PAYMENT_RETRY_POLICY,
  PAYMENT_RETRY_SERVICE,
  idleInTransactionTimeoutMs,
} from '../../../lambda/payment-retry/contract';
import { createPool } from '../../../service/db/pool';
import { HttpPaymentGateway } from '../../../service/payment-client';
import { TestDatabase } from '../../service/helpers/database';
import { Harness, checkout, newKey } from '../../service/helpers/harness';

/**
 * The worker's gateway policy with the timings the service's harness uses (an attempt
 * times out after 300 ms, backoff 10-50 ms): the same code paths, in test time.
 */
export const FAST_POLICY = {
  ...PAYMENT_RETRY_POLICY,
  PAYMENT_ATTEMPT_TIMEOUT_MS: 300,
  PAYMENT_BACKOFF_INITIAL_MS: 10,
  PAYMENT_BACKOFF_MAX_MS: 50,
  PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: 200,
};

/** The worker's gateway client against the fake gateway at `url`. */
export function workerGateway(url: string, policy = FAST_POLICY): HttpPaymentGateway {
  return new HttpPaymentGateway(url, policy);
}

/** The worker's pool (its limits, application name and idle-in-transaction timeout) on the test database. */
export function workerPool(db: TestDatabase): Pool {
  return createPool(
    {
      database: { mode: 'url', url: db.url },
      AWS_REGION: 'us-east-1',
      ...PAYMENT_RETRY_DATABASE,
      DB_NAMED_STATEMENTS: false,
    },
    {},
    { applicationName: PAYMENT_RETRY_SERVICE, idleInTransactionTimeoutMs: idleInTransactionTimeoutMs() },
  );
}

/** One order to place: its lines and payment token. */
export interface OrderSpec {
  readonly items: { sku: string; quantity: number }[];
  readonly paymentToken?: string;
}

/**
 * Places the orders through the service's HTTP API while its gateway hangs, so that the
 * service defers every one of them (PENDING_PAYMENT, a PaymentDeferred row in its
 * outbox), then lets the gateway answer again. Returns the order ids, in order.
 */
export async function placeDeferredOrders(h: Harness, specs: readonly OrderSpec[]): Promise<string[]> {
  h.payment.set({ mode: 'hang' });
  const ids: string[] = [];
  try {
    for (const spec of specs) {
      const res = await checkout(h.service.url, newKey('deferred'), {
        customerId: 'cust-retry',
        items: spec.items,
        paymentToken: spec.paymentToken ?? 'tok_visa',
      });
      if (res.status !== 201 || res.body.status !== 'PENDING_PAYMENT') {
        throw new Error(`expected a deferred order, got ${res.status} ${JSON.stringify(res.body)}`);
      }
      ids.push(res.body.orderId as string);
    }
  } finally {
    h.payment.set({ mode: 'ok' });
  }
  return ids;
}

/**
 * The payment-retry messages of the orders, as the outbox relay sends them (its
 * `MessageBody`: the row's payload with `eventId: "outbox-<id>"`, service/outbox/relay.ts).
 */
export async function paymentRetryMessages(db: TestDatabase, orderIds: readonly string[]): Promise<string[]> {
  const rows = await db.query<{ id: string; payload: Record<string, unknown> }>(
    `SELECT id, payload FROM outbox WHERE destination = 'payment-retry' AND payload->>'orderId' = ANY ($1) ORDER BY id`,
    [orderIds],
  );
  return rows.map((r) => JSON.stringify({ eventId: `outbox-${r.id}`, ...r.payload }));
}

/** An order's status and release time, and the order-events types in the outbox for it. */
export async function orderState(
  db: TestDatabase,
  orderId: string,
): Promise<{ status: string; chargeId: string | null; released: boolean; events: string[] }> {
  const [order] = await db.query<{ status: string; charge_id: string | null; released: boolean }>(
    'SELECT status, charge_id, released_at IS NOT NULL AS released FROM orders WHERE id = $1',
    [orderId],
  );
  const events = await db.query<{ type: string }>(
    `SELECT payload->>'type' AS type FROM outbox
      WHERE destination = 'order-events' AND payload->>'orderId' = $1 ORDER BY id`,
    [orderId],
  );
  return {
    status: order.status,
    chargeId: order.charge_id,
    released: order.released,
    events: events.map((e) => e.type),
  };
}

/** Units available of a SKU. */
export async function stockOf(db: TestDatabase, sku: string): Promise<number> {
  const [row] = await db.query<{ available: number }>('SELECT available FROM inventory WHERE sku = $1', [
    sku,
  ]);
  return row.available;
}
