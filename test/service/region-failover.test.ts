import { Client, Pool } from 'pg';
import pino from 'pino';
import { loadServiceConfig } from '../../service/config';
import { FakePaymentGateway } from '../../service/fakes/payment-gateway';
import { FakeRecommendations } from '../../service/fakes/recommendations';
import { FakeSqs } from '../../service/fakes/sqs';
import { mergeLines, requestHash } from '../../service/orders/order';
import { orderIdForKey } from '../../service/orders/order-id';
import { claimOrder } from '../../service/orders/reservation';
import { RunningService, startService } from '../../service/server';
import {
  ADMIN_DATABASE_URL,
  TestDatabase,
  createTestDatabase,
  describeWithPostgres,
} from './helpers/database';
import { call, checkout, checkoutBody, newKey, serviceEnv, setStock } from './helpers/harness';
import { waitFor } from './helpers/wait-for';

/**
 * What a regional failover does to the checkout, with PostgreSQL standing in for the two
 * Aurora clusters (docs/failover.md, "Data at the switch"):
 *
 * - a standby database before promotion is a read-only replica: here a database whose
 *   sessions are read-only (`default_transaction_read_only`); promotion makes it
 *   writable and ends the sessions opened before it (the instances restart);
 * - the writes Aurora Global Database had not yet replicated when the primary region was
 *   lost (its RPO) are missing from the promoted database: here they are made in the
 *   "old" database only;
 * - one payment gateway for both regions, as in production: it takes a charge once per
 *   idempotency key, and the service's key is the order id.
 */
describeWithPostgres('the checkout across a regional failover', () => {
  const gateway = new FakePaymentGateway();
  const recommendations = new FakeRecommendations();
  const sqs = new FakeSqs();
  const running: RunningService[] = [];
  const databases: TestDatabase[] = [];
  /** The test database's own session, which stays (ending it would be an unhandled error). */
  const ownSession = new Map<string, number>();
  let urls: { payment: string; recommendations: string; sqs: string };
  let savedEndpoint: string | undefined;

  beforeAll(async () => {
    urls = {
      payment: await gateway.listen(),
      recommendations: await recommendations.listen(),
      sqs: await sqs.listen(),
    };
    savedEndpoint = process.env.AWS_ENDPOINT_URL;
    process.env.AWS_ENDPOINT_URL = urls.sqs;
  }, 30_000);
  afterAll(async () => {
    await Promise.all(running.map((s) => s.shutdown('test finished')));
    await Promise.all([gateway.close(), recommendations.close(), sqs.close()]);
    for (const db of databases) await db.drop();
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = savedEndpoint;
  });

  /** The service of one region on its database, with that region's queues. */
  async function startRegion(db: TestDatabase, region: string, overrides: Record<string, string> = {}) {
    const config = loadServiceConfig(
      serviceEnv(db, urls.payment, urls.recommendations, {
        ORDER_EVENTS_QUEUE_URL: `${urls.sqs}/000000000000/${region}-order-events`,
        PAYMENT_RETRY_QUEUE_URL: `${urls.sqs}/000000000000/${region}-payment-retry`,
        ...overrides,
      }),
    );
    const service = await startService(config, pino({ level: 'silent' }));
    running.push(service);
    return service;
  }

  async function stop(service: RunningService): Promise<void> {
    await service.shutdown('region lost');
    running.splice(running.indexOf(service), 1);
  }

  /** A migrated database with stock, as both regions have once the primary has replicated. */
  async function regionDatabase(): Promise<TestDatabase> {
    const db = await createTestDatabase();
    databases.push(db);
    const [{ pid }] = await db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    ownSession.set(db.name, pid);
    const seed = await startRegion(db, 'seed');
    await setStock(seed.url, 'SKU-1', 1_000);
    await stop(seed);
    return db;
  }

  /** Runs a statement as the administrator (what the cluster's control plane does). */
  async function admin(sql: string, params: unknown[] = []): Promise<void> {
    const client = new Client({ connectionString: ADMIN_DATABASE_URL });
    await client.connect();
    try {
      await client.query(sql, params);
    } finally {
      await client.end();
    }
  }
  const endSessions = (db: TestDatabase) =>
    admin(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2',
      [db.name, ownSession.get(db.name)],
    );
  const makeReadOnlyReplica = async (db: TestDatabase) => {
    await admin(`ALTER DATABASE ${db.name} SET default_transaction_read_only = on`);
    await endSessions(db);
  };
  const promote = async (db: TestDatabase) => {
    await admin(`ALTER DATABASE ${db.name} SET default_transaction_read_only = off`);
    await endSessions(db);
  };
  /** A query on a fresh connection (the test database's own one may have been ended). */
  async function query<T>(db: TestDatabase, sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    try {
      return (await client.query(sql, params)).rows as T[];
    } finally {
      await client.end();
    }
  }
  const chargesOf = (orderId: string) => gateway.charges.get(orderId);

  test('a warm standby is ready on its read-only replica, takes no order and charges nothing, and takes orders once promoted, without a restart', async () => {
    // GIVEN the standby's service started on its replica (read-only until promoted)
    const db = await regionDatabase();
    await makeReadOnlyReplica(db);
    const standby = await startRegion(db, 'standby');

    // THEN it is ready (the load balancer and Route 53 count it as able to take traffic)...
    expect((await call(standby.url, 'GET', '/health/ready')).status).toBe(200);
    // ...but a checkout is refused with 503 + Retry-After (the client retries), before any charge
    const key = newKey('standby');
    const before = await checkout(standby.url, key);
    expect(before.status).toBe(503);
    expect(before.body).toMatchObject({ error: 'UNAVAILABLE' });
    expect(before.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(chargesOf(orderIdForKey(key))).toBeUndefined();

    // WHEN its database is promoted (writable; the sessions opened before it end)
    await promote(db);

    // THEN the same service takes the retried checkout, charged once
    const after = await waitFor(
      async () => {
        const res = await checkout(standby.url, key);
        return res.status === 201 ? res : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, message: 'the standby did not take orders after promotion' },
    );
    expect(after.body).toMatchObject({ orderId: orderIdForKey(key), status: 'CONFIRMED' });
    expect(chargesOf(orderIdForKey(key))).toMatchObject({ requests: 1 });
  }, 60_000);

  test('an order lost with the old region (not yet replicated) is not charged twice, and its event keeps its id, when the client retries on the new one', async () => {
    // GIVEN the primary took and charged a checkout whose rows never reached the standby
    const [primaryDb, standbyDb] = [await regionDatabase(), await regionDatabase()];
    const primary = await startRegion(primaryDb, 'primary');
    const key = newKey('lost');
    const first = await checkout(primary.url, key);
    expect(first.status).toBe(201);
    const firstCharge = chargesOf(first.body.orderId as string);
    expect(firstCharge).toBeDefined();
    // ...and published its OrderConfirmed to order-events
    const orderEvent = (queue: string) =>
      waitFor(() => sqs.received(queue).find((m) => m.orderId === first.body.orderId), {
        timeoutMs: 10_000,
        message: `no OrderConfirmed for the order on ${queue}`,
      });
    const firstEvent = await orderEvent('primary-order-events');

    // WHEN the primary region is lost and the client retries on the promoted standby, which
    // has no trace of the key
    await stop(primary);
    const standby = await startRegion(standbyDb, 'standby');
    expect(await query(standbyDb, 'SELECT 1 FROM idempotency_keys WHERE key = $1', [key])).toEqual([]);
    const retry = await checkout(standby.url, key);

    // THEN it is the same order (the id follows from the key) and the gateway answers with
    // the charge it already took: one charge, asked for twice
    expect(retry.status).toBe(201);
    expect(retry.body).toMatchObject({ orderId: first.body.orderId, status: 'CONFIRMED' });
    expect(gateway.charges.get(first.body.orderId as string)).toEqual({ ...firstCharge, requests: 2 });
    const [order] = await query<{ charge_id: string }>(
      standbyDb,
      'SELECT charge_id FROM orders WHERE id = $1',
      [first.body.orderId],
    );
    expect(order.charge_id).toBe(firstCharge!.chargeId);
    // AND the order's OrderConfirmed, written again by the new region, carries the event id
    // the first one had: the order-events worker drops it as a duplicate instead of
    // fulfilling the order twice (an id from the outbox's sequence is whatever the new
    // region's sequence hands out: the same here only by chance, both being outbox-1)
    const retryEvent = await orderEvent('standby-order-events');
    expect(retryEvent).toMatchObject({ type: 'OrderConfirmed', eventId: firstEvent.eventId });
    expect(firstEvent.eventId).toBe(`${first.body.orderId as string}/OrderConfirmed`);
  }, 60_000);

  /**
   * An order the old region had claimed (and replicated) and then charged, with the region
   * lost before the outcome was recorded: the promoted database holds it
   * PAYMENT_IN_PROGRESS, its key leased to a request that no longer exists.
   */
  async function inFlightOrder(db: TestDatabase, key: string): Promise<string> {
    const body = checkoutBody({ customerId: 'cust-in-flight' });
    const cart = mergeLines(body.items);
    if ('invalid' in cart) throw new Error(cart.invalid);
    const orderId = orderIdForKey(key);
    const pool = new Pool({ connectionString: db.url, max: 1 });
    try {
      const claim = await claimOrder(
        pool,
        {
          id: orderId,
          key,
          requestHash: requestHash(body),
          leaseToken: '00000000-0000-4000-8000-000000000001',
          customerId: body.customerId,
          currency: 'USD',
          paymentToken: body.paymentToken,
          items: body.items,
        },
        cart,
        1_000,
      );
      expect(claim.kind).toBe('created');
    } finally {
      await pool.end();
    }
    // The charge the old region took before it went down.
    const res = await fetch(`${urls.payment}/charges`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': orderId },
      body: JSON.stringify({ orderId, amountCents: 1_000, currency: 'USD', paymentToken: body.paymentToken }),
    });
    expect(res.status).toBe(201);
    return orderId;
  }

  test('an order in flight at the switch: the client retry on the new region resumes it and gets the charge the old region took', async () => {
    const db = await regionDatabase();
    const key = newKey('in-flight');
    const orderId = await inFlightOrder(db, key);
    const taken = chargesOf(orderId)!;

    // WHEN the client retries on the promoted region once the dead request's lease is over
    const standby = await startRegion(db, 'standby');
    const retry = await waitFor(
      async () => {
        const res = await checkout(standby.url, key, checkoutBody({ customerId: 'cust-in-flight' }));
        return res.status === 201 ? res : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, message: 'the retry never resumed the in-flight order' },
    );

    // THEN the order is confirmed with the old region's charge, not a new one
    expect(retry.body).toMatchObject({ orderId, status: 'CONFIRMED' });
    expect(chargesOf(orderId)).toEqual({ ...taken, requests: 2 });
  }, 60_000);

  test('an order in flight that nobody retries: the new region sweeps it to its own payment-retry queue, keyed by the order id', async () => {
    const db = await regionDatabase();
    const orderId = await inFlightOrder(db, newKey('swept'));
    await query(db, "UPDATE orders SET updated_at = now() - interval '1 hour' WHERE id = $1", [orderId]);

    // WHEN the promoted region's service runs (its sweep and its outbox relay)
    await startRegion(db, 'standby', { STUCK_ORDER_AFTER_MS: '1000' });

    // THEN the order is deferred, and its PaymentDeferred reaches this region's payment-retry
    // queue with the order id: the retry worker pays with it as the gateway's idempotency key,
    // which answers with the charge the old region took
    const deferred = await waitFor(
      () =>
        sqs.messages.find(
          (m) => m.queueUrl.endsWith('/standby-payment-retry') && JSON.parse(m.body).orderId === orderId,
        ),
      {
        timeoutMs: 15_000,
        intervalMs: 100,
        message: 'no PaymentDeferred reached the standby payment-retry queue',
      },
    );
    expect(JSON.parse(deferred.body)).toMatchObject({
      type: 'PaymentDeferred',
      orderId,
      amountCents: 1_000,
      cause: 'stuck-in-progress',
    });
    const [order] = await query<{ status: string }>(db, 'SELECT status FROM orders WHERE id = $1', [orderId]);
    expect(order.status).toBe('PENDING_PAYMENT');
  }, 60_000);
});
