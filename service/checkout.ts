import { createHash, randomUUID } from 'node:crypto';
import { Pool, PoolClient } from 'pg';
import { withClient } from './db/pool';
import { Metrics } from './metrics';
import { ChargeOutcome, PaymentGateway } from './payment-client';
import { Recommender } from './recommendations-client';

/** A validated checkout request body. */
export interface CheckoutRequest {
  readonly customerId: string;
  readonly items: readonly { readonly sku: string; readonly quantity: number }[];
  readonly paymentToken: string;
}

/** What the HTTP layer sends back. */
export interface CheckoutReply {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
  readonly retryAfterSeconds?: number;
}

export interface CheckoutDeps {
  readonly pool: Pool;
  readonly payments: PaymentGateway;
  readonly recommender: Recommender;
  readonly metrics: Metrics;
  readonly currency: string;
  readonly leaseMs: number;
  readonly duplicateWaitMs: number;
  readonly retryAfterSeconds: number;
}

/** Hash of the body as the client meant it: key order does not matter, item order does. */
export function requestHash(request: CheckoutRequest): string {
  const canonical = JSON.stringify({
    customerId: request.customerId,
    items: request.items.map((i) => ({ sku: i.sku, quantity: i.quantity })),
    paymentToken: request.paymentToken,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

async function inTransaction<T>(pool: Pool, work: (db: PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (db) => {
    await db.query('BEGIN');
    try {
      const result = await work(db);
      await db.query('COMMIT');
      return result;
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Claim =
  | { kind: 'created'; orderId: string; amountCents: number }
  | { kind: 'out-of-stock'; reply: CheckoutReply }
  | { kind: 'existing' };

class OutOfStock extends Error {
  constructor(
    readonly sku: string,
    readonly reason: 'unknown-sku' | 'insufficient-stock',
  ) {
    super(`${sku}: ${reason}`);
  }
}

/**
 * The checkout, in three short transactions around the payment call (no database
 * connection is held while the gateway is called):
 *
 * 1. claim the idempotency key, reserve every item (`available >= quantity` in the
 *    UPDATE, rows locked in SKU order so concurrent carts cannot deadlock), and insert
 *    the order as PAYMENT_IN_PROGRESS - all or nothing;
 * 2. charge through the resilient gateway client with the order id as the gateway's
 *    idempotency key;
 * 3. record the outcome, the outbox message and the stored reply atomically:
 *    CONFIRMED, PAYMENT_DECLINED (reservation released) or PENDING_PAYMENT (deferred
 *    to the payment-retry queue).
 *
 * A request whose key is already claimed waits for the first one's stored reply; a
 * claim whose lease expired (its process died) is taken over and resumed.
 */
export class CheckoutService {
  constructor(private readonly deps: CheckoutDeps) {}

  async checkout(key: string, request: CheckoutRequest): Promise<CheckoutReply> {
    const { metrics } = this.deps;
    metrics.increment('CheckoutRequests');
    const hash = requestHash(request);
    const recommendations = this.deps.recommender.recommend(request.customerId);

    const deadline = Date.now() + this.deps.duplicateWaitMs;
    for (let attempt = 0; ; attempt++) {
      const claim = await this.claim(key, hash, request);
      if (claim.kind === 'created') {
        return this.pay(key, claim.orderId, claim.amountCents, request, recommendations);
      }
      if (claim.kind === 'out-of-stock') return claim.reply;

      const existing = await this.deps.pool.query<{
        request_hash: string;
        status_code: number | null;
        response: Record<string, unknown> | null;
        order_id: string | null;
        expired: boolean;
      }>(
        `SELECT request_hash, status_code, response, order_id, locked_until < now() AS expired
           FROM idempotency_keys WHERE key = $1`,
        [key],
      );
      const row = existing.rows[0];
      if (row) {
        if (row.request_hash !== hash) {
          return {
            statusCode: 422,
            body: {
              error: 'IDEMPOTENCY_KEY_REUSED',
              message: 'this Idempotency-Key was used with a different body',
            },
          };
        }
        if (row.status_code !== null && row.response) {
          metrics.increment('IdempotentReplays');
          return { statusCode: row.status_code, body: row.response };
        }
        if (row.expired && row.order_id) {
          const taken = await this.deps.pool.query(
            `UPDATE idempotency_keys SET locked_until = now() + $2 * interval '1 millisecond'
              WHERE key = $1 AND status_code IS NULL AND locked_until < now()`,
            [key, this.deps.leaseMs],
          );
          if (taken.rowCount === 1) return this.resume(key, row.order_id, request, recommendations);
        }
      }
      if (Date.now() > deadline) {
        return {
          statusCode: 503,
          body: {
            error: 'REQUEST_IN_PROGRESS',
            message: 'a request with this Idempotency-Key is still being processed',
          },
          retryAfterSeconds: this.deps.retryAfterSeconds,
        };
      }
      await sleep(Math.min(200, 20 * 2 ** Math.min(attempt, 4)));
    }
  }

  /** Transaction 1: key + reservation + order, or nothing. */
  private async claim(key: string, hash: string, request: CheckoutRequest): Promise<Claim> {
    const orderId = randomUUID();
    try {
      return await inTransaction(this.deps.pool, async (db) => {
        const inserted = await db.query(
          `INSERT INTO idempotency_keys (key, request_hash, order_id, locked_until)
           VALUES ($1, $2, $3, now() + $4 * interval '1 millisecond')
           ON CONFLICT (key) DO NOTHING`,
          [key, hash, orderId, this.deps.leaseMs],
        );
        if (inserted.rowCount !== 1) return { kind: 'existing' } as const;

        const quantities = new Map<string, number>();
        for (const item of request.items)
          quantities.set(item.sku, (quantities.get(item.sku) ?? 0) + item.quantity);
        const skus = [...quantities.keys()].sort();
        let amountCents = 0;
        const lines: { sku: string; quantity: number; price: number }[] = [];
        for (const sku of skus) {
          const quantity = quantities.get(sku)!;
          const reserved = await db.query<{ price_cents: number }>(
            `UPDATE inventory SET available = available - $2, updated_at = now()
              WHERE sku = $1 AND available >= $2 RETURNING price_cents`,
            [sku, quantity],
          );
          if (reserved.rowCount !== 1) {
            const known = await db.query('SELECT 1 FROM inventory WHERE sku = $1', [sku]);
            throw new OutOfStock(sku, known.rowCount === 1 ? 'insufficient-stock' : 'unknown-sku');
          }
          const price = reserved.rows[0].price_cents;
          amountCents += price * quantity;
          lines.push({ sku, quantity, price });
        }
        await db.query(
          `INSERT INTO orders (id, idempotency_key, customer_id, status, amount_cents, currency, payment_token)
           VALUES ($1, $2, $3, 'PAYMENT_IN_PROGRESS', $4, $5, $6)`,
          [orderId, key, request.customerId, amountCents, this.deps.currency, request.paymentToken],
        );
        await db.query(
          `INSERT INTO order_items (order_id, sku, quantity, unit_price_cents)
           SELECT $1, * FROM unnest($2::text[], $3::int[], $4::int[])`,
          [orderId, lines.map((l) => l.sku), lines.map((l) => l.quantity), lines.map((l) => l.price)],
        );
        return { kind: 'created', orderId, amountCents } as const;
      });
    } catch (err) {
      if (!(err instanceof OutOfStock)) throw err;
      this.deps.metrics.increment('OutOfStock');
      const reply: CheckoutReply = {
        statusCode: 409,
        body: { error: 'OUT_OF_STOCK', sku: err.sku, reason: err.reason },
      };
      // Store the answer so a retry with the same key gets the same one.
      const stored = await this.deps.pool.query(
        `INSERT INTO idempotency_keys (key, request_hash, status_code, response, completed_at)
         VALUES ($1, $2, 409, $3, now()) ON CONFLICT (key) DO NOTHING`,
        [key, hash, reply.body],
      );
      return stored.rowCount === 1 ? { kind: 'out-of-stock', reply } : { kind: 'existing' };
    }
  }

  /** Resumes an order whose first request died between transactions 1 and 3. */
  private async resume(
    key: string,
    orderId: string,
    request: CheckoutRequest,
    recommendations: ReturnType<Recommender['recommend']>,
  ): Promise<CheckoutReply> {
    const { rows } = await this.deps.pool.query<{ status: string; amount_cents: string }>(
      'SELECT status, amount_cents FROM orders WHERE id = $1',
      [orderId],
    );
    const order = rows[0];
    if (order?.status === 'PAYMENT_IN_PROGRESS') {
      return this.pay(key, orderId, Number(order.amount_cents), request, recommendations);
    }
    // The stuck-order sweeper already deferred it: answer with what it became.
    const status = order?.status === 'CONFIRMED' ? 'CONFIRMED' : 'PENDING_PAYMENT';
    const recs = await recommendations;
    const body = {
      orderId,
      status,
      recommendations: recs.items,
      degraded: recs.degraded ? ['recommendations'] : [],
    };
    await this.deps.pool.query(
      `UPDATE idempotency_keys SET status_code = 201, response = $2, completed_at = now() WHERE key = $1`,
      [key, body],
    );
    return { statusCode: 201, body };
  }

  /** Payment, then transaction 3. */
  private async pay(
    key: string,
    orderId: string,
    amountCents: number,
    request: CheckoutRequest,
    recommendations: ReturnType<Recommender['recommend']>,
  ): Promise<CheckoutReply> {
    const outcome = await this.deps.payments.charge({
      orderId,
      amountCents,
      currency: this.deps.currency,
      paymentToken: request.paymentToken,
    });
    const recs = await recommendations;
    if (recs.degraded) this.deps.metrics.increment('RecommendationsDegraded');
    const reply = this.replyFor(orderId, outcome, recs.items, recs.degraded);
    await inTransaction(this.deps.pool, (db) =>
      this.record(db, key, orderId, amountCents, request, outcome, reply),
    );
    this.count(outcome);
    return reply;
  }

  private replyFor(
    orderId: string,
    outcome: ChargeOutcome,
    items: unknown[],
    degraded: boolean,
  ): CheckoutReply {
    if (outcome.kind === 'declined') {
      return { statusCode: 402, body: { error: 'PAYMENT_DECLINED', orderId, reason: outcome.reason } };
    }
    return {
      statusCode: 201,
      body: {
        orderId,
        status: outcome.kind === 'charged' ? 'CONFIRMED' : 'PENDING_PAYMENT',
        recommendations: items,
        degraded: degraded ? ['recommendations'] : [],
      },
    };
  }

  private async record(
    db: PoolClient,
    key: string,
    orderId: string,
    amountCents: number,
    request: CheckoutRequest,
    outcome: ChargeOutcome,
    reply: CheckoutReply,
  ): Promise<void> {
    const base = { orderId, customerId: request.customerId, amountCents, currency: this.deps.currency };
    if (outcome.kind === 'charged') {
      await db.query(
        `UPDATE orders SET status = 'CONFIRMED', charge_id = $2, updated_at = now() WHERE id = $1`,
        [orderId, outcome.chargeId],
      );
      await enqueue(db, 'order-events', {
        type: 'OrderConfirmed',
        ...base,
        chargeId: outcome.chargeId,
        items: request.items,
      });
    } else if (outcome.kind === 'declined') {
      await db.query(`UPDATE orders SET status = 'PAYMENT_DECLINED', updated_at = now() WHERE id = $1`, [
        orderId,
      ]);
      await releaseReservation(db, orderId);
      await enqueue(db, 'order-events', { type: 'OrderPaymentDeclined', ...base, reason: outcome.reason });
    } else {
      await db.query(`UPDATE orders SET status = 'PENDING_PAYMENT', updated_at = now() WHERE id = $1`, [
        orderId,
      ]);
      await enqueue(db, 'payment-retry', {
        type: 'PaymentDeferred',
        ...base,
        paymentToken: request.paymentToken,
        cause: outcome.cause,
      });
    }
    await db.query(
      `UPDATE idempotency_keys SET status_code = $2, response = $3, completed_at = now(), locked_until = NULL WHERE key = $1`,
      [key, reply.statusCode, reply.body],
    );
  }

  private count(outcome: ChargeOutcome): void {
    const { metrics } = this.deps;
    if (outcome.kind === 'charged') metrics.increment('OrdersConfirmed');
    else if (outcome.kind === 'declined') metrics.increment('PaymentsDeclined');
    else {
      metrics.increment('OrdersPendingPayment');
      metrics.increment(
        outcome.cause === 'circuit-open'
          ? 'PaymentDeferredCircuitOpen'
          : outcome.cause === 'bulkhead-full'
            ? 'PaymentDeferredBulkheadFull'
            : 'PaymentDeferredRetriesExhausted',
      );
    }
  }
}

/** Adds a message to the transactional outbox; the relay publishes it after commit. */
export async function enqueue(
  db: PoolClient,
  destination: 'order-events' | 'payment-retry',
  payload: Record<string, unknown>,
): Promise<void> {
  await db.query('INSERT INTO outbox (destination, payload) VALUES ($1, $2)', [destination, payload]);
}

/** Compensation: puts an order's reserved units back. */
export async function releaseReservation(db: PoolClient, orderId: string): Promise<void> {
  await db.query(
    `UPDATE inventory SET available = inventory.available + oi.quantity, updated_at = now()
       FROM order_items oi WHERE oi.order_id = $1 AND inventory.sku = oi.sku`,
    [orderId],
  );
}

/**
 * Defers orders stuck in PAYMENT_IN_PROGRESS (their request died after reserving) to
 * the payment-retry queue. The retry worker charges with the order id as idempotency
 * key, so an order that was in fact charged is not charged again.
 *
 * @returns how many orders were deferred
 */
export async function deferStuckOrders(pool: Pool, olderThanMs: number): Promise<number> {
  return inTransaction(pool, async (db) => {
    const { rows } = await db.query<{
      id: string;
      customer_id: string;
      amount_cents: string;
      currency: string;
      payment_token: string;
    }>(
      `SELECT o.id, o.customer_id, o.amount_cents, o.currency, o.payment_token
         FROM orders o JOIN idempotency_keys k ON k.key = o.idempotency_key
        WHERE o.status = 'PAYMENT_IN_PROGRESS'
          AND o.updated_at < now() - $1 * interval '1 millisecond'
          AND (k.locked_until IS NULL OR k.locked_until < now())
        ORDER BY o.updated_at LIMIT 100
        FOR UPDATE OF o SKIP LOCKED`,
      [olderThanMs],
    );
    for (const order of rows) {
      await db.query(`UPDATE orders SET status = 'PENDING_PAYMENT', updated_at = now() WHERE id = $1`, [
        order.id,
      ]);
      await enqueue(db, 'payment-retry', {
        type: 'PaymentDeferred',
        orderId: order.id,
        customerId: order.customer_id,
        amountCents: Number(order.amount_cents),
        currency: order.currency,
        paymentToken: order.payment_token,
        cause: 'stuck-in-progress',
      });
    }
    return rows.length;
  });
}

export { inTransaction };
