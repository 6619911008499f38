import { Client } from 'pg';
import { RECONCILER_METRICS } from '../../../lambda/inventory-reconciler/contract';
import { ReconcileResult, createReconciler } from '../../../lambda/inventory-reconciler/reconciler';
import { ChargeOutcome } from '../../../service/payment-client';
import { setStock } from '../../../service/orders/stock';
import { FakeLogger, FakeMetrics, lambdaContext } from '../../helpers/lambda';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';
import { DirectCheckout, startDirectCheckout } from '../../service/helpers/direct-checkout';
import { waitFor } from '../../service/helpers/wait-for';

const HOUR_MS = 3_600_000;
const HOLD_MS = HOUR_MS;

const DEFERRED: ChargeOutcome = { kind: 'deferred', cause: 'circuit-open' };
const CHARGED: ChargeOutcome = { kind: 'charged', chargeId: 'ch_reconciler' };
const DECLINED: ChargeOutcome = { kind: 'declined', reason: 'insufficient_funds' };

/**
 * The inventory reconciler against PostgreSQL with the service's schema: orders are placed
 * through the checkout service itself (its claim reserves the stock), so what the
 * reconciler releases is what a real checkout reserved.
 */
describeWithPostgres('inventory reconciler', () => {
  let db: TestDatabase;
  let direct: DirectCheckout;
  const sessions: Client[] = [];
  let keys = 0;
  let skus = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    direct = await startDirectCheckout(db);
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
    await direct?.close();
    await db?.drop();
  });

  /** A new SKU with its stock set through the admin route's code (a count). */
  async function newSku(available: number): Promise<string> {
    const sku = `REC-${++skus}`;
    await setStock(direct.pool, sku, available, 500);
    return sku;
  }

  /** An order placed through the checkout, whose payment comes to `outcome`. */
  async function order(outcome: ChargeOutcome, items: { sku: string; quantity: number }[]): Promise<string> {
    direct.payments.defaultOutcome = outcome;
    const reply = await direct.service.checkout(`rec-key-${++keys}`, {
      customerId: 'cust-rec',
      items,
      paymentToken: 'tok_rec',
    });
    return String(reply.body.orderId);
  }

  /** The relay published every pending outbox message (the PaymentDeferred ones included). */
  const relayed = () => db.query('UPDATE outbox SET published_at = now() WHERE published_at IS NULL');
  const age = (orderId: string, ms: number) =>
    db.query("UPDATE orders SET updated_at = now() - $2::float8 * interval '1 millisecond' WHERE id = $1", [
      orderId,
      ms,
    ]);
  const available = async (sku: string) =>
    (await db.query<{ available: number }>('SELECT available FROM inventory WHERE sku = $1', [sku]))[0]
      .available;
  const statusOf = async (orderId: string) =>
    (
      await db.query<{ status: string; released: boolean }>(
        'SELECT status, released_at IS NOT NULL AS released FROM orders WHERE id = $1',
        [orderId],
      )
    )[0];
  const cancellations = (orderId: string) =>
    db.query<{ destination: string; payload: Record<string, unknown> }>(
      "SELECT destination, payload FROM outbox WHERE payload->>'type' = 'OrderCancelled' AND payload->>'orderId' = $1",
      [orderId],
    );

  /** A reconciler on a session of its own (application_name `name`), with fakes for its logger and metrics. */
  function reconciler(name = 'reconciler-test', connect?: () => Promise<never>) {
    const logger = new FakeLogger();
    const metrics = new FakeMetrics();
    const run = createReconciler({
      connect:
        connect ??
        (async () => {
          const client = new Client({ connectionString: db.url, application_name: name });
          sessions.push(client);
          await client.connect();
          return { db: client, close: () => client.end() };
        }),
      logger,
      metrics,
      holdMs: HOLD_MS,
      batchSize: 2,
      reserveMs: 0,
    });
    return { run: (): Promise<ReconcileResult> => run({}, lambdaContext(60_000)), logger, metrics };
  }

  const driftOf = (result: ReconcileResult) => {
    if (result.skipped) throw new Error('the run was skipped');
    return result.drift;
  };

  test('an order past the hold time is cancelled, its stock released exactly once, and downstream told', async () => {
    // GIVEN a deferred order of 3 units, its PaymentDeferred relayed, untouched for 2 hours
    const sku = await newSku(10);
    const orderId = await order(DEFERRED, [{ sku, quantity: 3 }]);
    expect(await statusOf(orderId)).toEqual({ status: 'PENDING_PAYMENT', released: false });
    expect(await available(sku)).toBe(7);
    await relayed();
    await age(orderId, 2 * HOUR_MS);

    // WHEN the reconciler runs
    const first = reconciler();
    const result = await first.run();

    // THEN the order is CANCELLED and its 3 units are back
    expect(await statusOf(orderId)).toEqual({ status: 'CANCELLED', released: true });
    expect(await available(sku)).toBe(10);
    expect(result.skipped).toBeUndefined();
    expect(!result.skipped && result.release.cancelled).toContainEqual({ orderId, unitsReleased: 3 });
    expect(first.metrics.counts[RECONCILER_METRICS.ordersCancelled]).toBe(1);
    expect(first.metrics.counts[RECONCILER_METRICS.runFailed]).toBe(0);
    expect(first.metrics.published).toBe(1);
    // AND one OrderCancelled goes to order-events through the outbox
    expect(await cancellations(orderId)).toEqual([
      {
        destination: 'order-events',
        payload: {
          type: 'OrderCancelled',
          orderId,
          customerId: 'cust-rec',
          amountCents: 1_500,
          currency: 'USD',
          reason: 'payment-not-completed',
          pendingSince: expect.any(String),
          items: [{ sku, quantity: 3 }],
        },
      },
    ]);
    // AND the ledger adds up
    expect(driftOf(result).driftUnits).toBe(0);

    // WHEN it runs again THEN nothing more happens: no second release, no second event
    const again = await reconciler().run();
    expect(!again.skipped && again.release.cancelled).toEqual([]);
    expect(await available(sku)).toBe(10);
    expect(await cancellations(orderId)).toHaveLength(1);
    expect(driftOf(again).driftUnits).toBe(0);
  });

  test('leaves alone orders inside the hold time, and orders that completed or are being paid for', async () => {
    // GIVEN a deferred order 30 minutes old, and confirmed, declined and in-progress orders 2 hours old
    const sku = await newSku(20);
    const recent = await order(DEFERRED, [{ sku, quantity: 1 }]);
    const confirmed = await order(CHARGED, [{ sku, quantity: 2 }]);
    const declined = await order(DECLINED, [{ sku, quantity: 4 }]);
    direct.payments.hold(1);
    direct.payments.defaultOutcome = CHARGED;
    const paying = direct.service.checkout(`rec-key-${++keys}`, {
      customerId: 'cust-rec',
      items: [{ sku, quantity: 5 }],
      paymentToken: 'tok_rec',
    });
    const inProgress = await waitFor(
      async () =>
        (
          await db.query<{ id: string }>(
            "SELECT o.id FROM orders o JOIN order_items i ON i.order_id = o.id WHERE i.sku = $1 AND o.status = 'PAYMENT_IN_PROGRESS'",
            [sku],
          )
        )[0]?.id,
      { message: 'the in-progress order was never claimed' },
    );
    await relayed();
    await age(recent, HOLD_MS / 2);
    for (const id of [confirmed, declined, inProgress]) await age(id, 2 * HOUR_MS);
    // 20 - 1 (held) - 2 (sold) - 5 (held); the declined 4 went back at once
    expect(await available(sku)).toBe(12);

    // WHEN the reconciler runs
    const result = await reconciler().run();

    // THEN none of them changed
    expect(await statusOf(recent)).toEqual({ status: 'PENDING_PAYMENT', released: false });
    expect(await statusOf(confirmed)).toEqual({ status: 'CONFIRMED', released: false });
    expect(await statusOf(declined)).toEqual({ status: 'PAYMENT_DECLINED', released: true });
    expect(await statusOf(inProgress)).toEqual({ status: 'PAYMENT_IN_PROGRESS', released: false });
    expect(await available(sku)).toBe(12);
    for (const id of [recent, confirmed, declined, inProgress]) expect(await cancellations(id)).toEqual([]);
    expect(driftOf(result).driftUnits).toBe(0);

    direct.payments.releaseHeld();
    expect((await paying).body.status).toBe('CONFIRMED');
  });

  test('never cancels an order another transaction holds (the payment-retry worker charging it)', async () => {
    // GIVEN an expired deferred order whose row the payment-retry worker holds while it charges
    const sku = await newSku(5);
    const orderId = await order(DEFERRED, [{ sku, quantity: 2 }]);
    await relayed();
    await age(orderId, 2 * HOUR_MS);
    const worker = new Client({ connectionString: db.url, application_name: 'payment-retry-test' });
    sessions.push(worker);
    await worker.connect();
    await worker.query('BEGIN');
    await worker.query("SELECT id FROM orders WHERE id = $1 AND status = 'PENDING_PAYMENT' FOR UPDATE", [
      orderId,
    ]);

    // WHEN the reconciler runs meanwhile THEN it skips the order instead of waiting for it
    const during = await reconciler().run();
    expect(!during.skipped && during.release.cancelled.map((c) => c.orderId)).not.toContain(orderId);
    expect(!during.skipped && during.release.skipped).toBeGreaterThanOrEqual(1);
    expect(await available(sku)).toBe(3);

    // WHEN the charge succeeds and is recorded, and the reconciler runs again
    await worker.query(
      "UPDATE orders SET status = 'CONFIRMED', charge_id = 'ch_retry', updated_at = now() WHERE id = $1",
      [orderId],
    );
    await worker.query('COMMIT');
    await reconciler().run();

    // THEN the charged order keeps its stock
    expect(await statusOf(orderId)).toEqual({ status: 'CONFIRMED', released: false });
    expect(await available(sku)).toBe(3);
    expect(await cancellations(orderId)).toEqual([]);
  });

  test('waits for a PaymentDeferred still in the outbox: the relay is behind, the order is not abandoned', async () => {
    // GIVEN an expired deferred order whose message the relay has not published yet
    const sku = await newSku(5);
    const orderId = await order(DEFERRED, [{ sku, quantity: 1 }]);
    await age(orderId, 2 * HOUR_MS);

    // WHEN the reconciler runs THEN the order waits
    await reconciler().run();
    expect(await statusOf(orderId)).toEqual({ status: 'PENDING_PAYMENT', released: false });

    // WHEN the relay catches up (the message reached the queue) THEN the next run cancels it
    await relayed();
    await age(orderId, 2 * HOUR_MS);
    await reconciler().run();
    expect(await statusOf(orderId)).toEqual({ status: 'CANCELLED', released: true });
    expect(await available(sku)).toBe(5);
  });

  test('two runs at once release each reservation once', async () => {
    // GIVEN five expired deferred orders over two SKUs
    const a = await newSku(30);
    const b = await newSku(30);
    const orders = [];
    for (let i = 0; i < 5; i++) {
      orders.push(
        await order(DEFERRED, [
          { sku: a, quantity: 1 + i },
          { sku: b, quantity: 2 },
        ]),
      );
    }
    await relayed();
    for (const id of orders) await age(id, 2 * HOUR_MS);
    expect([await available(a), await available(b)]).toEqual([15, 20]);

    // AND a checkout holding SKU a's inventory row, so that both runs reach the first
    // order's cancellation before either can finish it
    const checkout = new Client({ connectionString: db.url });
    sessions.push(checkout);
    await checkout.connect();
    await checkout.query('BEGIN');
    await checkout.query('SELECT sku FROM inventory WHERE sku = $1 FOR UPDATE', [a]);

    // WHEN two runs start together
    const first = reconciler('reconciler-run-1');
    const second = reconciler('reconciler-run-2');
    const runs = Promise.all([first.run(), second.run()]);
    await waitFor(
      async () =>
        (
          await db.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'reconciler-run-%' AND wait_event_type = 'Lock'",
          )
        )[0].n === 2,
      { message: 'both runs should wait on the same inventory row' },
    );
    await checkout.query('COMMIT');
    const results = await runs;

    // THEN every order is cancelled once, by one run or the other, and the stock is back exactly
    const cancelled = results.flatMap((r) => (r.skipped ? [] : r.release.cancelled.map((c) => c.orderId)));
    expect([...cancelled].sort()).toEqual([...orders].sort());
    expect([await available(a), await available(b)]).toEqual([30, 30]);
    for (const id of orders) {
      expect(await statusOf(id)).toEqual({ status: 'CANCELLED', released: true });
      expect(await cancellations(id)).toHaveLength(1);
    }
    for (const r of results) expect(driftOf(r).driftUnits).toBe(0);
    // AND the run that lost an order to the other skipped it rather than failing
    expect(
      first.metrics.counts[RECONCILER_METRICS.runFailed] +
        second.metrics.counts[RECONCILER_METRICS.runFailed],
    ).toBe(0);
  });

  test('reports drift 0 on consistent data, the units after a corrupted row, and 0 again after a count', async () => {
    // GIVEN orders in every state on one SKU, and a restock while some are held
    const sku = await newSku(50);
    await order(CHARGED, [{ sku, quantity: 5 }]);
    await order(DECLINED, [{ sku, quantity: 7 }]);
    const held = await order(DEFERRED, [{ sku, quantity: 3 }]);
    await relayed();
    await setStock(direct.pool, sku, 100, 500);

    // WHEN the reconciler runs THEN the ledger adds up
    const consistent = await reconciler().run();
    expect(driftOf(consistent)).toMatchObject({ driftUnits: 0, driftedSkus: 0 });
    expect(driftOf(consistent).heldUnits).toBeGreaterThanOrEqual(3);

    // WHEN a row is corrupted: 2 units appear in stock out of nowhere (a double release)
    await db.query('UPDATE inventory SET available = available + 2 WHERE sku = $1', [sku]);
    const appeared = reconciler();
    const afterAppear = await appeared.run();

    // THEN the drift is 2 units on that SKU, published and logged with the SKU
    expect(driftOf(afterAppear)).toMatchObject({ driftUnits: 2, driftedSkus: 1 });
    expect(driftOf(afterAppear).worst).toEqual([
      { sku, available: 102, held: 3, sold: 5, countedUnits: 108, drift: 2 },
    ]);
    expect(appeared.metrics.counts[RECONCILER_METRICS.drift]).toBe(2);
    expect(appeared.metrics.counts[RECONCILER_METRICS.driftedSkus]).toBe(1);
    expect(appeared.logger.at('error')[0]).toMatchObject({
      message: 'inventory drift: the stock ledger does not add up',
      extra: { driftUnits: 2, worst: [expect.objectContaining({ sku, drift: 2 })] },
    });

    // WHEN another corruption loses a release: the held order is marked CANCELLED, its 3 units not returned
    await db.query("UPDATE orders SET status = 'CANCELLED', released_at = now() WHERE id = $1", [held]);
    const lost = await reconciler().run();

    // THEN that SKU's drift is +2 - 3 = -1 unit
    expect(driftOf(lost).worst).toEqual([expect.objectContaining({ sku, drift: -1 })]);
    expect(driftOf(lost).driftUnits).toBe(1);

    // WHEN the stock is counted again (PUT /admin/inventory) THEN the drift is gone
    await setStock(direct.pool, sku, 90, 500);
    expect(driftOf(await reconciler().run())).toMatchObject({ driftUnits: 0, driftedSkus: 0 });
  });

  test('a SKU inserted without a count is reported as uncounted, not as drift', async () => {
    // GIVEN a SKU written straight into the table (no counted_units)
    await db.query("INSERT INTO inventory (sku, available, price_cents) VALUES ('REC-RAW', 4, 100)");

    // WHEN the reconciler runs THEN it counts it as unchecked
    const run = reconciler();
    const result = await run.run();
    expect(driftOf(result).uncountedSkus).toBe(1);
    expect(driftOf(result).driftUnits).toBe(0);
    expect(run.metrics.counts[RECONCILER_METRICS.uncountedSkus]).toBe(1);
    await setStock(direct.pool, 'REC-RAW', 4, 100);
    expect(driftOf(await reconciler().run()).uncountedSkus).toBe(0);
  });

  test('does nothing on a read-only database (the standby region before promotion)', async () => {
    // GIVEN an expired deferred order, and the database turned read-only for new sessions
    const sku = await newSku(5);
    const orderId = await order(DEFERRED, [{ sku, quantity: 1 }]);
    await relayed();
    await age(orderId, 2 * HOUR_MS);
    await db.query(`ALTER DATABASE ${db.name} SET default_transaction_read_only = on`);
    try {
      // WHEN the reconciler runs
      const run = reconciler();
      const result = await run.run();

      // THEN it skips, neither failing nor changing anything
      expect(result).toEqual({ skipped: 'read-only' });
      expect(run.metrics.counts[RECONCILER_METRICS.runSkipped]).toBe(1);
      expect(run.metrics.counts[RECONCILER_METRICS.runFailed]).toBe(0);
      expect(await statusOf(orderId)).toEqual({ status: 'PENDING_PAYMENT', released: false });
    } finally {
      await db.query(`ALTER DATABASE ${db.name} RESET default_transaction_read_only`);
    }
    // AND once writable (promoted) the next run releases it
    await reconciler().run();
    expect(await statusOf(orderId)).toEqual({ status: 'CANCELLED', released: true });
  });

  test('a run that cannot reach the database fails loudly: RunFailed 1, and the error rethrown', async () => {
    // GIVEN a database that refuses the connection
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const run = reconciler('reconciler-unreachable', () => Promise.reject(refused));

    // WHEN it runs THEN the invocation fails, and its metrics say so
    await expect(run.run()).rejects.toThrow(/ECONNREFUSED/);
    expect(run.metrics.counts[RECONCILER_METRICS.runFailed]).toBe(1);
    expect(run.metrics.published).toBe(1);
    expect(run.logger.at('error')[0].message).toBe('inventory reconciliation failed');
  });
});
