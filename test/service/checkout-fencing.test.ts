import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import { DirectCheckout, startDirectCheckout } from './helpers/direct-checkout';
import { waitFor } from './helpers/wait-for';

/**
 * Defect 1 of issue 9: a retry takes over a key whose lease expired while the first
 * request is still paying. Whatever the timing, the order's outcome is recorded once:
 * the request that lost its lease records nothing and answers with what the other stored.
 */
describeWithPostgres('a lease taken over while the first request is still paying', () => {
  let db: TestDatabase;
  let direct: DirectCheckout;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A lease far shorter than the payment: the takeover the config rule now prevents
    // for well-behaved payments, forced here to prove the fence holds regardless.
    direct = await startDirectCheckout(db, { leaseMs: 200 });
  });
  afterAll(async () => {
    await direct?.close();
    await db?.drop();
  });

  const stockOf = async (sku: string) =>
    (await db.query<{ available: number }>('SELECT available FROM inventory WHERE sku = $1', [sku]))[0]
      .available;
  const eventsOf = async (orderId: string) =>
    (
      await db.query<{ type: string }>(
        "SELECT payload->>'type' AS type FROM outbox WHERE payload->>'orderId' = $1 ORDER BY id",
        [orderId],
      )
    ).map((e) => e.type);

  /** First request held in the gateway past its lease; a retry takes over and finishes first. */
  async function raceTakeover(key: string, sku: string, quantity: number) {
    const body = { customerId: 'cust-fence', items: [{ sku, quantity }], paymentToken: 'tok_visa' };
    const callsBefore = direct.payments.calls.length;
    direct.payments.hold(1);
    const first = direct.service.checkout(key, body);
    await waitFor(() => direct.payments.calls.length > callsBefore, { message: 'first request never paid' });
    await waitFor(
      async () =>
        (
          await db.query<{ expired: boolean }>(
            'SELECT locked_until <= now() AS expired FROM idempotency_keys WHERE key = $1',
            [key],
          )
        )[0]?.expired,
      { message: 'the lease never expired' },
    );
    const second = await direct.service.checkout(key, body);
    direct.payments.releaseHeld();
    return { first: await first, second };
  }

  test('a charged order gets one OrderConfirmed event, and both requests get the same answer', async () => {
    // GIVEN stock, and a gateway that charges
    await db.query("INSERT INTO inventory (sku, available, price_cents) VALUES ('FENCE-OK', 100, 500)");
    direct.payments.defaultOutcome = { kind: 'charged', chargeId: 'ch_fence' };

    // WHEN the retry takes over the expired lease and both requests finish paying
    const { first, second } = await raceTakeover('fence-ok-key', 'FENCE-OK', 5);

    // THEN the outcome was recorded once, and the loser answered with the winner's reply
    expect(second.statusCode).toBe(201);
    expect(second.body.status).toBe('CONFIRMED');
    const orderId = second.body.orderId as string;
    expect(await eventsOf(orderId)).toEqual(['OrderConfirmed']);
    expect({ statusCode: first.statusCode, body: first.body }).toEqual({
      statusCode: second.statusCode,
      body: second.body,
    });
    expect(await stockOf('FENCE-OK')).toBe(95);
  });

  test('a declined order releases its reservation once (stock back to 100, not 105)', async () => {
    // GIVEN 100 units, and a gateway that declines
    await db.query("INSERT INTO inventory (sku, available, price_cents) VALUES ('FENCE-NO', 100, 500)");
    direct.payments.defaultOutcome = { kind: 'declined', reason: 'card_declined' };

    // WHEN a 5-unit order is declined to both the first request and the retry
    const { first, second } = await raceTakeover('fence-no-key', 'FENCE-NO', 5);

    // THEN the reservation came back exactly once, with one decline event
    expect(second.statusCode).toBe(402);
    expect(first.statusCode).toBe(402);
    expect(await stockOf('FENCE-NO')).toBe(100);
    expect(await eventsOf(second.body.orderId as string)).toEqual(['OrderPaymentDeclined']);
  });
});
