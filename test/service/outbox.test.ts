import { Server, Socket, createServer } from 'node:net';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Pool } from 'pg';
import { loadServiceConfig } from '../../service/config';
import { createPool } from '../../service/db/pool';
import { migrate } from '../../service/db/migrations';
import { FakeSqs } from '../../service/fakes/sqs';
import { Metrics } from '../../service/metrics';
import { OutboxRelay, OutboxRelayOptions } from '../../service/outbox/relay';
import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import { serviceEnv, startHarness } from './helpers/harness';
import { MotoSqs, motoAvailable } from './helpers/moto';
import { waitFor } from './helpers/wait-for';

type Destination = 'order-events' | 'payment-retry';

/** A TCP server that accepts connections and never answers: a hung SQS endpoint. */
class SilentServer {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  url = '';

  constructor() {
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the elapsed milliseconds, or with Infinity if `work` takes longer than `capMs`. */
async function timed(work: Promise<unknown>, capMs: number): Promise<number> {
  const started = Date.now();
  const finished = await Promise.race([work.then(() => true), sleep(capMs).then(() => false)]);
  return finished ? Date.now() - started : Infinity;
}

const withMoto = motoAvailable();

describeWithPostgres('the outbox relay', () => {
  let db: TestDatabase;
  let pool: Pool;
  let fake: FakeSqs;
  let fakeUrl: string;
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool(loadServiceConfig(serviceEnv(db, 'http://127.0.0.1:9', 'http://127.0.0.1:9')));
    await migrate(pool);
    fake = new FakeSqs({ queues: ['order-events', 'payment-retry'] });
    fakeUrl = await fake.listen();
  }, 60_000);
  afterAll(async () => {
    await fake?.close();
    await pool?.end();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.query('DELETE FROM outbox');
    fake.messages.length = 0;
    fake.entryFailure = () => undefined;
    fake.set({ latencyMs: 0 });
    fake.setQueueMode('order-events', undefined);
    fake.setQueueMode('payment-retry', undefined);
  });
  afterEach(async () => {
    // Bounded: a relay stuck on a hung send must not hang the suite.
    await Promise.race([Promise.all(relays.splice(0).map((r) => r.stop())), sleep(5_000)]);
  });

  const fakeQueues = () => ({
    'order-events': `${fakeUrl}/000000000000/order-events`,
    'payment-retry': `${fakeUrl}/000000000000/payment-retry`,
  });

  function relay(overrides: Partial<OutboxRelayOptions> & { endpoint?: string } = {}): {
    relay: OutboxRelay;
    metrics: Metrics;
  } {
    const metrics = new Metrics();
    const { endpoint = fakeUrl, ...rest } = overrides;
    const r = new OutboxRelay({
      pool,
      sqs: new SQSClient({ endpoint, region: 'us-east-1', maxAttempts: 1 }),
      queueUrls: fakeQueues(),
      batchSize: 10,
      metrics,
      sendTimeoutMs: 1_000,
      maxBackoffMs: 1_000,
      ...rest,
    });
    relays.push(r);
    return { relay: r, metrics };
  }

  async function insert(destination: Destination, payloads: Record<string, unknown>[]): Promise<void> {
    await db.query('INSERT INTO outbox (destination, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p', [
      destination,
      payloads.map((p) => JSON.stringify(p)),
    ]);
  }

  const pending = async (destination: Destination) =>
    (
      await db.query<{ n: string }>(
        'SELECT count(*) AS n FROM outbox WHERE destination = $1 AND published_at IS NULL AND parked_at IS NULL',
        [destination],
      )
    )[0].n;

  const probes = (n: number, type = 'Probe') => Array.from({ length: n }, (_, i) => ({ type, n: i }));

  describe('one failing destination does not delay another', () => {
    test('a hung payment-retry queue does not hold back order events, old or new', async () => {
      // GIVEN 25 payment-retry rows, older than any order event, for a queue that hangs
      fake.setQueueMode('payment-retry', 'hang');
      await insert('payment-retry', probes(25, 'Deferred'));
      await insert('order-events', probes(3));
      const { relay: r } = relay();

      // WHEN the relay runs
      r.start(20);

      // THEN the order events go out at once, and so does one written while the other still hangs
      await waitFor(() => fake.received('order-events').length === 3, {
        timeoutMs: 2_000,
        message: 'order events held back by the hung payment-retry queue',
      });
      await insert('order-events', [{ type: 'Later' }]);
      await waitFor(() => fake.received('order-events').some((m) => m.type === 'Later'), {
        timeoutMs: 1_000,
        message: 'a new order event waited for the hung queue',
      });
      expect(await pending('payment-retry')).toBe('25');
    });

    test('a queue that errors every time is backed off, not hammered', async () => {
      // GIVEN a payment-retry queue that answers 500 to everything
      fake.setQueueMode('payment-retry', 'error');
      await insert('payment-retry', probes(3, 'Deferred'));
      await db.query(`UPDATE outbox SET created_at = now() - interval '10 minutes'`);
      const { relay: r, metrics } = relay({ maxBackoffMs: 400 });

      // WHEN the relay runs every 20 ms for a second
      r.start(20);
      await sleep(1_000);

      // THEN it tried a handful of times (backing off to 400 ms), not fifty, and parked nothing
      expect(fake.sendRequests).toBeGreaterThanOrEqual(3);
      expect(fake.sendRequests).toBeLessThanOrEqual(12);
      expect(metrics.value('OutboxMessagesParked')).toBe(0);
      expect(await pending('payment-retry')).toBe('3');
      // The alarm's gauge: the oldest row the destination could not send, 10 minutes old.
      expect(r.gauges().OutboxOldestPendingSeconds).toBeGreaterThanOrEqual(600);

      // ...and once it is healthy the rows go out within the backoff
      fake.setQueueMode('payment-retry', undefined);
      await waitFor(() => fake.received('payment-retry').length === 3, { timeoutMs: 2_000 });
      await waitFor(() => r.gauges().OutboxOldestPendingSeconds === 0, { timeoutMs: 1_000 });
    });
  });

  describe('messages SQS refuses', () => {
    test('an entry SQS rejects as the sender\u2019s fault is parked and counted; the others are published', async () => {
      // GIVEN three order events, the middle one with a character SQS refuses (U+FFFF)
      await insert('order-events', [
        { type: 'OrderConfirmed', n: 1 },
        { type: 'OrderPaymentDeclined', n: 2, reason: 'gateway said \uffff' },
        { type: 'OrderConfirmed', n: 3 },
      ]);
      const { relay: r, metrics } = relay();

      // WHEN the relay runs twice
      await r.publishPending();
      await r.publishPending();

      // THEN two are published once, the third is parked with SQS's reason and counted once
      expect(fake.received('order-events').map((m) => m.n)).toEqual([1, 3]);
      const parked = await db.query<{ n: number; park_reason: string }>(
        `SELECT (payload->>'n')::int AS n, park_reason FROM outbox WHERE parked_at IS NOT NULL`,
      );
      expect(parked).toEqual([
        { n: 2, park_reason: expect.stringMatching(/^InvalidMessageContents: Invalid characters/) },
      ]);
      expect(metrics.value('OutboxMessagesParked')).toBe(1);
      expect(await pending('order-events')).toBe('0');
    });

    test('an entry that fails through no fault of the sender stays pending and is retried', async () => {
      let failures = 2;
      fake.entryFailure = () => (failures-- > 0 ? { Code: 'InternalError', SenderFault: false } : undefined);
      await insert('order-events', [{ type: 'OrderConfirmed', n: 1 }]);
      const { relay: r, metrics } = relay();

      r.start(20);

      await waitFor(() => fake.received('order-events').length === 1, { timeoutMs: 3_000 });
      expect(metrics.value('OutboxMessagesParked')).toBe(0);
      expect(metrics.value('OutboxPublishFailures')).toBe(2);
    });
  });

  describe('a hung SQS connection', () => {
    test('a relay pass against an endpoint that never answers fails within the send timeout', async () => {
      // GIVEN an SQS endpoint that accepts connections and never answers
      const silent = await new SilentServer().start();
      try {
        await insert('order-events', probes(2));
        const { relay: r, metrics } = relay({ endpoint: silent.url, sendTimeoutMs: 500 });

        // WHEN a pass runs THEN it gives up within the timeout, and the rows stay pending
        expect(await timed(r.publishPending(), 5_000)).toBeLessThan(1_500);
        expect(metrics.value('OutboxPublishFailures')).toBe(2);
        expect(await pending('order-events')).toBe('2');
      } finally {
        await silent.stop();
      }
    });
  });
});

(withMoto ? describeWithPostgres : describe.skip)('the outbox against moto_server (real SQS API)', () => {
  let db: TestDatabase;
  let pool: Pool;
  let moto: MotoSqs;
  let queues: Record<Destination | 'small', string>;
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    pool = createPool(loadServiceConfig(serviceEnv(db, 'http://127.0.0.1:9', 'http://127.0.0.1:9')));
    await migrate(pool);
    moto = await MotoSqs.start();
    const small = await moto.client.send(
      new CreateQueueCommand({ QueueName: 'small', Attributes: { MaximumMessageSize: '1024' } }),
    );
    queues = {
      'order-events': await moto.createQueue('order-events'),
      'payment-retry': await moto.createQueue('payment-retry'),
      small: small.QueueUrl!,
    };
  }, 60_000);
  afterAll(async () => {
    await moto?.stop();
    await pool?.end();
    await db?.drop();
  });
  beforeEach(async () => {
    await db.query('DELETE FROM outbox');
    for (const url of Object.values(queues)) await moto.drain(url);
  });
  afterEach(async () => {
    await Promise.race([Promise.all(relays.splice(0).map((r) => r.stop())), sleep(5_000)]);
  });

  function relay(queueUrls: Record<Destination, string>): { relay: OutboxRelay; metrics: Metrics } {
    const metrics = new Metrics();
    const r = new OutboxRelay({
      pool,
      sqs: new SQSClient({ endpoint: moto.endpoint, region: 'us-east-1', maxAttempts: 1 }),
      queueUrls,
      batchSize: 10,
      metrics,
      sendTimeoutMs: 2_000,
      maxBackoffMs: 1_000,
    });
    relays.push(r);
    return { relay: r, metrics };
  }

  async function insert(destination: Destination, payloads: Record<string, unknown>[]): Promise<void> {
    await db.query('INSERT INTO outbox (destination, payload) SELECT $1, p FROM unnest($2::jsonb[]) AS p', [
      destination,
      payloads.map((p) => JSON.stringify(p)),
    ]);
  }

  test('a wrong payment-retry queue URL does not hold back order events; its rows wait, unparked, for the fix', async () => {
    // GIVEN 25 payment-retry rows, older than any order event, and a payment-retry URL
    // naming a queue that does not exist
    await insert(
      'payment-retry',
      Array.from({ length: 25 }, (_, n) => ({ type: 'PaymentDeferred', n })),
    );
    await insert(
      'order-events',
      [1, 2, 3].map((n) => ({ type: 'OrderConfirmed', n })),
    );
    const wrong = relay({
      'order-events': queues['order-events'],
      'payment-retry': queues['payment-retry'].replace(/payment-retry$/, 'payment-retyr'),
    });

    // WHEN one relay pass runs
    await wrong.relay.publishPending();

    // THEN every order event is published, and the payment-retry rows stay pending (a
    // wrong URL is the destination's fault, not the messages')
    const events = await moto.drain(queues['order-events']);
    expect(events.map((e) => e.n).sort()).toEqual([1, 2, 3]);
    const rows = await db.query<{ published: number; parked: number }>(
      `SELECT count(published_at)::int AS published, count(parked_at)::int AS parked
         FROM outbox WHERE destination = 'payment-retry'`,
    );
    expect(rows).toEqual([{ published: 0, parked: 0 }]);
    expect(wrong.metrics.value('OutboxMessagesParked')).toBe(0);

    // ...and once the URL is fixed, they are all published
    const fixed = relay({ 'order-events': queues['order-events'], 'payment-retry': queues['payment-retry'] });
    await fixed.relay.publishPending();
    expect((await moto.drain(queues['payment-retry'])).length).toBe(25);
  });

  test('a message over the queue\u2019s size limit is parked; the rest of its batch is published', async () => {
    // GIVEN a queue that takes messages up to 1 KiB, and three events, one of 2 KiB
    await insert('order-events', [
      { type: 'OrderConfirmed', n: 1 },
      { type: 'OrderConfirmed', n: 2, filler: 'x'.repeat(2_048) },
      { type: 'OrderConfirmed', n: 3 },
    ]);
    const { relay: r, metrics } = relay({
      'order-events': queues.small,
      'payment-retry': queues['payment-retry'],
    });

    // WHEN a relay pass runs (SQS refuses the whole batch for that one message)
    await r.publishPending();

    // THEN the two others are published and the big one is parked with SQS's reason
    expect((await moto.drain(queues.small)).map((e) => e.n).sort()).toEqual([1, 3]);
    const parked = await db.query<{ n: number; park_reason: string }>(
      `SELECT (payload->>'n')::int AS n, park_reason FROM outbox WHERE parked_at IS NOT NULL`,
    );
    expect(parked).toEqual([
      { n: 2, park_reason: expect.stringMatching(/InvalidParameterValue.*shorter than 1024/) },
    ]);
    expect(metrics.value('OutboxMessagesParked')).toBe(1);
  });
});

describeWithPostgres('the outbox at shutdown', () => {
  let db: TestDatabase;
  let savedEndpoint: string | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    savedEndpoint = process.env.AWS_ENDPOINT_URL;
  }, 60_000);
  afterAll(async () => {
    if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL;
    else process.env.AWS_ENDPOINT_URL = savedEndpoint;
    await db?.drop();
  });

  const queueEnv = (endpoint: string) => {
    process.env.AWS_ENDPOINT_URL = endpoint;
    return {
      ORDER_EVENTS_QUEUE_URL: `${endpoint}/000000000000/order-events`,
      PAYMENT_RETRY_QUEUE_URL: `${endpoint}/000000000000/payment-retry`,
    };
  };

  test('a backlog of thousands of rows: shutdown ends within the drain budget and leaves the rest for the next instance', async () => {
    // GIVEN 6,000 pending rows and an SQS that takes 40 ms a request (about 12 s to send them all)
    const sqs = new FakeSqs();
    const endpoint = await sqs.listen();
    sqs.set({ latencyMs: 40 });
    try {
      const h = await startHarness(db, {
        ...queueEnv(endpoint),
        DRAIN_TIMEOUT_MS: '1500',
        OUTBOX_INTERVAL_MS: '60000',
      });
      await db.query(
        `INSERT INTO outbox (destination, payload)
         SELECT CASE WHEN n % 2 = 0 THEN 'order-events' ELSE 'payment-retry' END, jsonb_build_object('type', 'Backlog', 'n', n)
           FROM generate_series(1, 6000) AS n`,
      );

      // WHEN the service shuts down with a 1.5 s drain budget
      const elapsed = await timed(h.service.shutdown('test'), 30_000);
      await h.stop();

      // THEN it is done within the budget (and a small margin), having published part of the backlog
      expect(elapsed).toBeLessThan(2_500);
      const [{ left }] = await db.query<{ left: number }>(
        'SELECT count(*)::int AS left FROM outbox WHERE published_at IS NULL',
      );
      expect(left).toBeGreaterThan(0);
      expect(left).toBeLessThan(6_000);
      expect(new Set(sqs.messages.map((m) => m.body)).size).toBe(sqs.messages.length); // none sent twice

      // ...and the next instance publishes the rest
      sqs.set({ latencyMs: 0 });
      const next = await startHarness(db, { ...queueEnv(endpoint), OUTBOX_INTERVAL_MS: '20' });
      try {
        await waitFor(
          async () =>
            (
              await db.query<{ left: number }>(
                'SELECT count(*)::int AS left FROM outbox WHERE published_at IS NULL',
              )
            )[0].left === 0,
          { timeoutMs: 30_000, intervalMs: 200, message: 'the next instance did not publish the backlog' },
        );
      } finally {
        await next.stop();
      }
      // Every row delivered. A send the deadline cut off may have reached SQS all the same:
      // its rows stayed pending and went again (at least once; consumers dedupe on eventId),
      // at most one batch per destination.
      const bodies = sqs.messages.map((m) => m.body);
      expect(new Set(bodies).size).toBe(6_000);
      expect(bodies.length - 6_000).toBeLessThanOrEqual(2 * 10);
    } finally {
      await sqs.close();
    }
  });

  test('a hung SQS connection does not hold shutdown', async () => {
    // GIVEN pending rows and an SQS endpoint that accepts connections and never answers
    const silent = await new SilentServer().start();
    try {
      const h = await startHarness(db, {
        ...queueEnv(silent.url),
        DRAIN_TIMEOUT_MS: '2000',
        SQS_TIMEOUT_MS: '500',
        OUTBOX_INTERVAL_MS: '20',
      });
      await db.query(`INSERT INTO outbox (destination, payload) VALUES ('order-events', '{"type":"Stuck"}')`);
      await sleep(200); // a relay pass is now waiting on the silent endpoint

      // WHEN the service shuts down THEN it is done within the drain budget, the row still pending
      const elapsed = await timed(h.service.shutdown('test'), 20_000);
      await Promise.race([h.stop(), sleep(1_000)]);
      expect(elapsed).toBeLessThan(3_000);
      expect(
        await db.query(`SELECT 1 FROM outbox WHERE payload->>'type' = 'Stuck' AND published_at IS NULL`),
      ).toHaveLength(1);
    } finally {
      await silent.stop();
    }
  });
});
