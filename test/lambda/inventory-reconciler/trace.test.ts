/**
 * The inventory reconciler on an order's trace (docs/observability.md, "Tracing an
 * order"): the line of each order it cancels carries that order's `orderId`, and the
 * OrderCancelled message it queues names the order (the relay's and order-events' lines
 * follow from it).
 */
import { Client } from 'pg';
import { createReconciler } from '../../../lambda/inventory-reconciler/reconciler';
import { setStock } from '../../../service/orders/stock';
import { FakeLogger, FakeMetrics, lambdaContext } from '../../helpers/lambda';
import { TestDatabase, createTestDatabase, describeWithPostgres } from '../../service/helpers/database';
import { DirectCheckout, startDirectCheckout } from '../../service/helpers/direct-checkout';

const HOUR_MS = 3_600_000;

describeWithPostgres("the inventory reconciler's lines", () => {
  let db: TestDatabase;
  let direct: DirectCheckout;
  const sessions: Client[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    direct = await startDirectCheckout(db);
  });
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.end().catch(() => undefined)));
    await direct?.close();
    await db?.drop();
  });

  test('each cancelled order is one line with its orderId, one per order', async () => {
    // GIVEN two deferred orders, their PaymentDeferred relayed, untouched for two hours
    await setStock(direct.pool, 'TRACE-REC', 10, 500);
    direct.payments.defaultOutcome = { kind: 'deferred', cause: 'circuit-open' };
    const orderIds: string[] = [];
    for (const key of ['trace-rec-1', 'trace-rec-2']) {
      const reply = await direct.service.checkout(key, {
        customerId: 'cust-trace',
        items: [{ sku: 'TRACE-REC', quantity: 2 }],
        paymentToken: 'tok_trace',
      });
      expect(reply.body.status).toBe('PENDING_PAYMENT');
      orderIds.push(String(reply.body.orderId));
    }
    await db.query('UPDATE outbox SET published_at = now() WHERE published_at IS NULL');
    await db.query(`UPDATE orders SET updated_at = now() - interval '2 hours' WHERE id = ANY ($1::uuid[])`, [
      orderIds,
    ]);

    // WHEN the reconciler runs
    const logger = new FakeLogger();
    const run = createReconciler({
      connect: async () => {
        const client = new Client({ connectionString: db.url });
        sessions.push(client);
        await client.connect();
        return { db: client, close: () => client.end() };
      },
      logger,
      metrics: new FakeMetrics(),
      holdMs: HOUR_MS,
      batchSize: 10,
      reserveMs: 0,
    });
    await run({}, lambdaContext(60_000));

    // THEN each order has its own line, naming it
    const cancelled = logger.entries.filter((e) => e.message.startsWith('order cancelled'));
    expect(cancelled.map((e) => e.extra.orderId).sort()).toEqual([...orderIds].sort());
    for (const line of cancelled) expect(line.extra).toMatchObject({ unitsReleased: 2, holdMs: HOUR_MS });
    // AND each OrderCancelled message names its order
    const messages = await db.query<{ order_id: string }>(
      "SELECT payload->>'orderId' AS order_id FROM outbox WHERE payload->>'type' = 'OrderCancelled'",
    );
    expect(messages.map((m) => m.order_id).sort()).toEqual([...orderIds].sort());
  });
});
