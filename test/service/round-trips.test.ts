import { PoolClient } from 'pg';
import { statementTag } from '../../service/db/statement';
import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import { DirectCheckout, startDirectCheckout } from './helpers/direct-checkout';

/**
 * Database round trips per checkout (issue 9, performance): at most 3 on the happy,
 * decline and out-of-stock paths.
 *
 * Counted as the queries the pool's clients send: pg does not pipeline, so each query
 * (simple or extended protocol, prepared by name or not) is one request and one wait
 * for its answer; BEGIN and COMMIT count like any statement. Connections are opened
 * before the count starts, as they are in a running service. Statements are told apart
 * by the tag their SQL starts with (`/* checkout-claim *\/`), since they are not
 * prepared under names (RDS Proxy would pin the session: service/db/statement.ts).
 * bench/checkout.ts counts the same on the wire, under load.
 */
describeWithPostgres('database round trips per checkout', () => {
  let db: TestDatabase;
  let direct: DirectCheckout;
  let sent: string[] = [];
  /** Every query sent since the suite started, as pg was given it. */
  const everything: { text: string; name?: string }[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    direct = await startDirectCheckout(db, { pool: { max: 4 } });
    const counted = new WeakSet<PoolClient>();
    const count = (client: PoolClient) => {
      if (counted.has(client)) return;
      counted.add(client);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        const first = args[0] as string | { text: string; name?: string };
        const config = typeof first === 'string' ? { text: first } : first;
        everything.push(config);
        sent.push(statementTag(config.text) ?? config.text);
        return query(...args);
      };
    };
    direct.pool.on('connect', count);
    // Open every connection the pool may use, so that none is opened during a count; the
    // one migrations left idle was connected before the hook, so each is counted here too.
    const clients = await Promise.all(Array.from({ length: 4 }, () => direct.pool.connect()));
    for (const client of clients) {
      count(client);
      client.release();
    }
    await db.query(
      "INSERT INTO inventory (sku, available, price_cents) VALUES ('RT-A', 1000, 100), ('RT-B', 1000, 250), ('RT-LOW', 1, 100)",
    );
  });
  afterAll(async () => {
    await direct?.close();
    await db?.drop();
  });

  const cart = (items: { sku: string; quantity: number }[]) => ({
    customerId: 'cust-rt',
    items,
    paymentToken: 'tok_visa',
  });

  async function roundTrips(run: () => Promise<{ statusCode: number }>, status: number) {
    // Each path once to prepare its statements on some connection, then measured.
    await run();
    sent = [];
    const reply = await run();
    expect(reply.statusCode).toBe(status);
    return sent;
  }

  let n = 0;
  const key = (path: string) => `rt-${path}-${++n}`;

  test('a confirmed checkout makes at most 3 round trips', async () => {
    direct.payments.defaultOutcome = { kind: 'charged', chargeId: 'ch_rt' };
    const items = [
      { sku: 'RT-B', quantity: 2 },
      { sku: 'RT-A', quantity: 1 },
    ];
    const trips = await roundTrips(() => direct.service.checkout(key('ok'), cart(items)), 201);
    expect(trips.length).toBeLessThanOrEqual(3);
    expect(trips).toEqual(['checkout-claim', 'checkout-record-outcome']);
  });

  test('a declined checkout makes at most 3 round trips', async () => {
    direct.payments.defaultOutcome = { kind: 'declined', reason: 'card_declined' };
    const items = [{ sku: 'RT-A', quantity: 3 }];
    const trips = await roundTrips(() => direct.service.checkout(key('declined'), cart(items)), 402);
    expect(trips.length).toBeLessThanOrEqual(3);
    expect(trips).toEqual(['checkout-claim', 'checkout-record-outcome']);
  });

  test('a replay of a stored reply makes 1 round trip', async () => {
    direct.payments.defaultOutcome = { kind: 'charged', chargeId: 'ch_rt' };
    const replayed = key('replay');
    const items = [{ sku: 'RT-A', quantity: 1 }];
    const trips = await roundTrips(() => direct.service.checkout(replayed, cart(items)), 201);
    expect(trips).toEqual(['checkout-claim']);
  });

  test('an out-of-stock checkout makes at most 3 round trips', async () => {
    const items = [
      { sku: 'RT-A', quantity: 1 },
      { sku: 'RT-LOW', quantity: 5 },
    ];
    const trips = await roundTrips(() => direct.service.checkout(key('oos'), cart(items)), 409);
    expect(trips.length).toBeLessThanOrEqual(3);
    expect(trips).toEqual(['checkout-claim']);
  });

  test('no statement is prepared under a name, and no SET is sent (either would pin an RDS Proxy session)', async () => {
    // GIVEN every path above (confirmed, declined, replayed, out of stock) has run
    expect(everything.length).toBeGreaterThan(0);
    // THEN every query went out unnamed, tagged, and none changed session state
    expect(everything.filter((q) => q.name !== undefined)).toEqual([]);
    expect(everything.filter((q) => statementTag(q.text) === undefined)).toEqual([]);
    expect(everything.filter((q) => /^\s*(SET|RESET|PREPARE|LISTEN)\b/i.test(q.text))).toEqual([]);
  });
});
