/**
 * The payment-retry worker's database and gateway work on real PostgreSQL and the
 * service's fake gateway, over orders the checkout service itself deferred (its harness,
 * with the gateway hanging).
 */
import { Client, Pool } from 'pg';
import {
  GatewayRejectedError,
  OrderNotFoundError,
  PaymentNotTakenError,
} from '../../../lambda/payment-retry/errors';
import { createPaymentRetryHandler } from '../../../lambda/payment-retry/handler';
import { PAYMENT_RETRY_SERVICE, idleInTransactionTimeoutMs } from '../../../lambda/payment-retry/contract';
import { retryDeferredPayment } from '../../../lambda/payment-retry/settle';
import { HttpPaymentGateway } from '../../../service/payment-client';
import { InMemoryPersistenceLayer } from '../../helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../../helpers/lambda';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';
import { Harness, setStock, startHarness } from '../../service/helpers/harness';
import { waitFor } from '../../service/helpers/wait-for';
import {
  orderState,
  paymentRetryMessages,
  placeDeferredOrders,
  stockOf,
  workerGateway,
  workerPool,
} from './helpers';

describeWithPostgres('retrying a deferred payment (PostgreSQL, the fake gateway)', () => {
  let db: TestDatabase;
  let h: Harness;
  let pool: Pool;
  let gateway: HttpPaymentGateway;

  beforeAll(async () => {
    db = await createTestDatabase();
    h = await startHarness(db);
    pool = workerPool(db);
    gateway = workerGateway(h.config.PAYMENT_URL);
  }, 60_000);
  afterAll(async () => {
    gateway?.close();
    await pool?.end();
    await h?.stop();
    await db?.drop();
  });
  beforeEach(() => {
    h.payment.set({ mode: 'ok', latencyMs: 0, errorRate: 0 });
    h.payment.rejectStatus = 0;
  });

  const retry = (orderId: string, g: HttpPaymentGateway = gateway) =>
    retryDeferredPayment({ pool, gateway: g }, orderId);

  test('the worker sessions run as payment-retry, and outlast a charge idle in their transaction', async () => {
    const client = await pool.connect();
    try {
      const { rows } = await client.query<{ name: string; idle: string }>(
        `SELECT current_setting('application_name') AS name,
                current_setting('idle_in_transaction_session_timeout') AS idle`,
      );
      expect(rows[0].name).toBe(PAYMENT_RETRY_SERVICE);
      expect(rows[0].idle).toBe(`${idleInTransactionTimeoutMs() / 1000}s`);
    } finally {
      client.release();
    }
  });

  test('success: the order is CONFIRMED with the charge the gateway took once, OrderConfirmed in the outbox, stock stays sold', async () => {
    // GIVEN an order of 2 units the service deferred
    await setStock(h.service.url, 'RETRY-OK', 10);
    const [orderId] = await placeDeferredOrders(h, [{ items: [{ sku: 'RETRY-OK', quantity: 2 }] }]);
    expect(await orderState(db, orderId)).toMatchObject({ status: 'PENDING_PAYMENT', events: [] });
    expect(await stockOf(db, 'RETRY-OK')).toBe(8);
    // WHEN the worker retries it
    const outcome = await retry(orderId);
    // THEN it was charged once, under the order id, and confirmed with that charge
    const charge = h.payment.charges.get(orderId);
    expect(charge).toMatchObject({ amountCents: 2_000, requests: 1 });
    expect(outcome).toEqual({ kind: 'confirmed', orderId, chargeId: charge!.chargeId });
    expect(await orderState(db, orderId)).toEqual({
      status: 'CONFIRMED',
      chargeId: charge!.chargeId,
      released: false,
      events: ['OrderConfirmed'],
    });
    expect(await stockOf(db, 'RETRY-OK')).toBe(8);
    // and the event carries what the checkout's own OrderConfirmed carries
    const [event] = await db.query<{ payload: Record<string, unknown> }>(
      `SELECT payload FROM outbox WHERE destination = 'order-events' AND payload->>'orderId' = $1`,
      [orderId],
    );
    expect(event.payload).toEqual({
      type: 'OrderConfirmed',
      orderId,
      customerId: 'cust-retry',
      amountCents: 2_000,
      currency: 'USD',
      chargeId: charge!.chargeId,
      items: [{ sku: 'RETRY-OK', quantity: 2 }],
    });
  });

  test('decline: the reservation goes back to stock exactly once, PAYMENT_DECLINED with one OrderPaymentDeclined', async () => {
    // GIVEN an order of 3 units, with a token the gateway declines, deferred by the service
    await setStock(h.service.url, 'RETRY-DECLINE', 10);
    const [orderId] = await placeDeferredOrders(h, [
      { items: [{ sku: 'RETRY-DECLINE', quantity: 3 }], paymentToken: 'tok_decline' },
    ]);
    expect(await stockOf(db, 'RETRY-DECLINE')).toBe(7);
    // WHEN the worker retries it
    expect(await retry(orderId)).toEqual({ kind: 'declined', orderId, reason: 'card_declined' });
    // THEN its units are back and it is released, with one event
    expect(await stockOf(db, 'RETRY-DECLINE')).toBe(10);
    expect(await orderState(db, orderId)).toEqual({
      status: 'PAYMENT_DECLINED',
      chargeId: null,
      released: true,
      events: ['OrderPaymentDeclined'],
    });
    // WHEN it is retried again (its idempotency record lost or expired)
    const requests = h.payment.requestCount;
    expect(await retry(orderId)).toEqual({ kind: 'already-settled', orderId, status: 'PAYMENT_DECLINED' });
    // THEN the gateway is not asked, the stock is not given back twice, no second event
    expect(h.payment.requestCount).toBe(requests);
    expect(await stockOf(db, 'RETRY-DECLINE')).toBe(10);
    expect((await orderState(db, orderId)).events).toEqual(['OrderPaymentDeclined']);
  });

  test('a gateway that keeps failing leaves the order PENDING_PAYMENT, its stock held, nothing written, no lock left', async () => {
    await setStock(h.service.url, 'RETRY-DOWN', 10);
    const [orderId] = await placeDeferredOrders(h, [{ items: [{ sku: 'RETRY-DOWN', quantity: 1 }] }]);
    // GIVEN a gateway answering 503 to everything (a fresh client: its breaker closed)
    h.payment.set({ mode: 'error' });
    const client = workerGateway(h.config.PAYMENT_URL);
    try {
      // WHEN the worker retries the order
      const failure = await retry(orderId, client).catch((e: unknown) => e);
      // THEN the payment was not taken (every attempt failed), and the order is as it was
      expect(failure).toBeInstanceOf(PaymentNotTakenError);
      expect((failure as PaymentNotTakenError).deferral).toBe('retries-exhausted');
      expect(await orderState(db, orderId)).toMatchObject({
        status: 'PENDING_PAYMENT',
        released: false,
        events: [],
      });
      expect(await stockOf(db, 'RETRY-DOWN')).toBe(9);
      // and its row lock went with the rolled-back transaction
      const free = await db.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE NOWAIT', [orderId]);
      expect(free).toHaveLength(1);
    } finally {
      client.close();
    }
  });

  test('the gateway refusing our request (a revoked API key) leaves the order untouched', async () => {
    await setStock(h.service.url, 'RETRY-KEY', 10);
    const [orderId] = await placeDeferredOrders(h, [{ items: [{ sku: 'RETRY-KEY', quantity: 1 }] }]);
    h.payment.rejectStatus = 401;
    const failure = await retry(orderId).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayRejectedError);
    expect((failure as GatewayRejectedError).status).toBe(401);
    expect(await orderState(db, orderId)).toMatchObject({ status: 'PENDING_PAYMENT', events: [] });
    expect(await stockOf(db, 'RETRY-KEY')).toBe(9);
  });

  test('an order no longer PENDING_PAYMENT (confirmed by the service meanwhile) is neither charged nor compensated', async () => {
    await setStock(h.service.url, 'RETRY-FENCE', 10);
    const [orderId] = await placeDeferredOrders(h, [{ items: [{ sku: 'RETRY-FENCE', quantity: 4 }] }]);
    // GIVEN the order settled by someone else before the message arrives
    await db.query("UPDATE orders SET status = 'CONFIRMED', charge_id = 'ch_elsewhere' WHERE id = $1", [
      orderId,
    ]);
    const requests = h.payment.requestCount;
    // WHEN the worker retries it
    expect(await retry(orderId)).toEqual({ kind: 'already-settled', orderId, status: 'CONFIRMED' });
    // THEN nothing happened: no call, no stock movement, no event
    expect(h.payment.requestCount).toBe(requests);
    expect(await stockOf(db, 'RETRY-FENCE')).toBe(6);
    expect(await orderState(db, orderId)).toMatchObject({ chargeId: 'ch_elsewhere', events: [] });
  });

  test('while the gateway charges, the order row is locked: a release with SKIP LOCKED (the reconciler) leaves it alone', async () => {
    await setStock(h.service.url, 'RETRY-LOCK', 10);
    const [orderId] = await placeDeferredOrders(h, [{ items: [{ sku: 'RETRY-LOCK', quantity: 1 }] }]);
    // GIVEN a gateway that takes 250 ms to answer
    h.payment.set({ latencyMs: 250 });
    const requests = h.payment.requestCount;
    // WHEN the worker charges the order, and meanwhile someone tries to take the order's row
    const charging = retry(orderId);
    await waitFor(() => h.payment.requestCount > requests, {
      message: 'the charge never reached the gateway',
    });
    const taken = await db.query(
      "SELECT id FROM orders WHERE id = $1 AND status = 'PENDING_PAYMENT' FOR UPDATE SKIP LOCKED",
      [orderId],
    );
    // THEN the row is held for the whole charge, and the order ends CONFIRMED
    expect(taken).toEqual([]);
    expect((await charging).kind).toBe('confirmed');
    expect((await orderState(db, orderId)).status).toBe('CONFIRMED');
  });

  test('an order id the database does not hold fails as OrderNotFoundError', async () => {
    await expect(retry('00000000-0000-4000-8000-000000000000')).rejects.toThrow(OrderNotFoundError);
  });

  describe('the handler over the real work (in-memory idempotency records)', () => {
    function worker(g: HttpPaymentGateway) {
      const metrics = new FakeMetrics();
      const handler = createPaymentRetryHandler({
        logger: new FakeLogger(),
        metrics,
        persistenceStore: new InMemoryPersistenceLayer(),
        expiresAfterSeconds: 1_900_800,
        retry: (orderId) => retryDeferredPayment({ pool, gateway: g }, orderId),
      });
      return { handler, metrics };
    }

    test('a transient failure returns the record as a batch item failure; the next delivery confirms it', async () => {
      // GIVEN two deferred orders, and the gateway failing for one of them only
      await setStock(h.service.url, 'RETRY-BATCH', 10);
      const ids = await placeDeferredOrders(h, [
        { items: [{ sku: 'RETRY-BATCH', quantity: 1 }] },
        { items: [{ sku: 'RETRY-BATCH', quantity: 1 }] },
      ]);
      const [failing, healthy] = (await paymentRetryMessages(db, ids)).map((body) => sqsRecord(body));
      const client = workerGateway(h.config.PAYMENT_URL);
      const { handler, metrics } = worker(client);
      h.payment.set({ mode: 'error' });
      try {
        // WHEN the first arrives while the gateway is down, the second once it is back
        const down = await handler(sqsEvent(failing), lambdaContext()).catch((e: unknown) => e);
        h.payment.set({ mode: 'ok' });
        const result = await handler(sqsEvent(sqsRecord(failing.body), healthy), lambdaContext());
        // THEN the first invocation failed its only record (a whole-batch failure: Lambda retries it)...
        expect((down as Error).name).toBe('FullBatchFailureError');
        expect(metrics.counts.PaymentsNotTaken).toBe(1);
        // ...and its redelivery confirmed it, with the other order in the same batch
        expect(result).toEqual({ batchItemFailures: [] });
        for (const id of ids) expect((await orderState(db, id)).status).toBe('CONFIRMED');
        expect(metrics.counts.OrdersConfirmed).toBe(2);
      } finally {
        client.close();
      }
    });

    test('in a mixed batch only the failing record is returned', async () => {
      await setStock(h.service.url, 'RETRY-MIXED', 10);
      const ids = await placeDeferredOrders(h, [
        { items: [{ sku: 'RETRY-MIXED', quantity: 1 }] },
        { items: [{ sku: 'RETRY-MIXED', quantity: 1 }] },
      ]);
      const [bad, good] = (await paymentRetryMessages(db, ids)).map((body) => sqsRecord(body));
      // GIVEN the first order settled elsewhere and its row held by another transaction
      // past the worker's statement timeout, so its lock wait fails (transient)
      const holder = new Client({ connectionString: db.url });
      await holder.connect();
      const client = workerGateway(h.config.PAYMENT_URL);
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT id FROM orders WHERE id = $1 FOR UPDATE', [ids[0]]);
        const { handler } = worker(client);
        // WHEN both arrive in one batch
        const result = await handler(sqsEvent(bad, good), lambdaContext());
        // THEN only the blocked one is returned, and the other is confirmed
        expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: bad.messageId }] });
        expect((await orderState(db, ids[0])).status).toBe('PENDING_PAYMENT');
        expect((await orderState(db, ids[1])).status).toBe('CONFIRMED');
      } finally {
        await holder.query('ROLLBACK').catch(() => undefined);
        await holder.end();
        client.close();
      }
    });
  });
});
