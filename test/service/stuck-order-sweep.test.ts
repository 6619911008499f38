import { PaymentRejectedError } from '../../service/errors';
import { deferStuckOrders } from '../../service/orders/stuck-order-sweep';
import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import { DirectCheckout, startDirectCheckout } from './helpers/direct-checkout';
import { waitFor } from './helpers/wait-for';

/**
 * The stuck-order sweep: an order left PAYMENT_IN_PROGRESS by a request that died or gave
 * up is deferred to payment-retry once, with the reply a retry of the checkout gets.
 */
describeWithPostgres('stuck-order sweep', () => {
  let db: TestDatabase;
  let direct: DirectCheckout;
  beforeAll(async () => {
    db = await createTestDatabase();
    direct = await startDirectCheckout(db);
    await db.query("INSERT INTO inventory (sku, available, price_cents) VALUES ('STUCK-1', 100, 700)");
  });
  afterAll(async () => {
    await direct?.close();
    await db?.drop();
  });

  const body = {
    customerId: 'cust-stuck',
    items: [{ sku: 'STUCK-1', quantity: 2 }],
    paymentToken: 'tok_stuck',
  };
  const rejected = { kind: 'rejected', error: new PaymentRejectedError(401, 'Invalid API Key') } as const;
  /** Makes the order look as old as the sweep's threshold. */
  const age = (orderId: string) =>
    db.query("UPDATE orders SET updated_at = now() - interval '1 hour' WHERE id = $1", [orderId]);
  const orderOf = async (key: string) =>
    (
      await db.query<{ id: string; status: string }>(
        'SELECT id, status FROM orders WHERE idempotency_key = $1',
        [key],
      )
    )[0];

  test('defers an order its request gave up on, once, and a retry of the checkout gets that answer', async () => {
    // GIVEN a checkout the gateway rejected: the order waits with its lease released
    direct.payments.defaultOutcome = rejected;
    const first = await direct.service.checkout('stuck-key-1', body);
    expect(first.statusCode).toBe(503);
    const order = await orderOf('stuck-key-1');
    expect(order.status).toBe('PAYMENT_IN_PROGRESS');
    await age(order.id);

    // WHEN the sweep runs twice
    expect(await deferStuckOrders(direct.pool, 60_000)).toBe(1);
    expect(await deferStuckOrders(direct.pool, 60_000)).toBe(0);

    // THEN it is PENDING_PAYMENT with one PaymentDeferred for payment-retry, token included
    expect((await orderOf('stuck-key-1')).status).toBe('PENDING_PAYMENT');
    const messages = await db.query<{ destination: string; payload: Record<string, unknown> }>(
      "SELECT destination, payload FROM outbox WHERE payload->>'orderId' = $1",
      [order.id],
    );
    expect(messages).toEqual([
      {
        destination: 'payment-retry',
        payload: {
          type: 'PaymentDeferred',
          orderId: order.id,
          customerId: 'cust-stuck',
          amountCents: 1_400,
          currency: 'USD',
          paymentToken: 'tok_stuck',
          cause: 'stuck-in-progress',
        },
      },
    ]);
    // AND a retry with the same key is answered with it (a replay of the stored reply),
    // without paying again
    const callsBefore = direct.payments.calls.length;
    const retry = await direct.service.checkout('stuck-key-1', body);
    expect(retry).toEqual({
      statusCode: 201,
      body: {
        orderId: order.id,
        status: 'PENDING_PAYMENT',
        recommendations: [],
        degraded: ['recommendations'],
      },
      replayed: true,
    });
    expect(direct.payments.calls.length).toBe(callsBefore);
  });

  test('leaves alone an order whose request still holds its lease', async () => {
    // GIVEN a request that is still paying (held in the gateway)
    direct.payments.defaultOutcome = { kind: 'charged', chargeId: 'ch_late' };
    direct.payments.hold(1);
    const paying = direct.service.checkout('stuck-key-2', body);
    const order = await waitFor(() => orderOf('stuck-key-2'), { message: 'the order was never claimed' });
    await age(order.id);

    // WHEN the sweep runs THEN it skips it, and the request records its own outcome
    expect(await deferStuckOrders(direct.pool, 60_000)).toBe(0);
    direct.payments.releaseHeld();
    expect((await paying).body.status).toBe('CONFIRMED');
    expect((await orderOf('stuck-key-2')).status).toBe('CONFIRMED');
  });
});
