/**
 * The payment-retry worker's part of `npm run bench:workers` (bench/workers.ts calls it):
 * prints figures, asserts nothing.
 *
 *   1. the bundle exactly as the construct builds it (PAYMENT_RETRY_EXTERNAL_MODULES), its
 *      size, what it holds, and its cold init (a fresh `node` requiring it, as for the
 *      other workers);
 *   2. the handler's own time per record (batch of 10, in-memory idempotency records, the
 *      order work replaced by a no-op): new orders, then the same orders again;
 *   3. the real work against local PostgreSQL (DATABASE_URL, default
 *      postgres://postgres@127.0.0.1:5432, as the tests) and the service's fake gateway on
 *      loopback: PENDING_PAYMENT orders seeded with SQL, each retried once (row lock,
 *      charge, settling statement, commit), one at a time and in batches of 10 through
 *      the handler as an invocation runs them (in parallel, on the worker's pool).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Duration } from 'aws-cdk-lib';
import { Pool } from 'pg';
import {
  PAYMENT_RETRY_DATABASE,
  PAYMENT_RETRY_POLICY,
  PAYMENT_RETRY_SERVICE,
  idleInTransactionTimeoutMs,
} from '../lambda/payment-retry/contract';
import { createPaymentRetryHandler } from '../lambda/payment-retry/handler';
import { retryDeferredPayment } from '../lambda/payment-retry/settle';
import { PAYMENT_RETRY_EXTERNAL_MODULES } from '../lib/constructs/payment-retry-worker';
import { REPO_ROOT } from '../lib/constructs/worker-function';
import { createPool } from '../service/db/pool';
import { migrate } from '../service/db/migrations';
import { FakePaymentGateway } from '../service/fakes/payment-gateway';
import { HttpPaymentGateway } from '../service/payment-client';
import { InMemoryPersistenceLayer } from '../test/helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../test/helpers/lambda';
import { createTestDatabase } from '../test/service/helpers/database';
import {
  type ColdInit,
  deployedBundle,
  median,
  ms,
  perRecordTimes,
  printDeployedBundle,
} from './worker-bench';

/** What the payment-retry bundle reads from its environment at init (no call is made). */
export const PAYMENT_RETRY_INIT_ENV: Record<string, string> = {
  IDEMPOTENCY_TABLE_NAME: 'bench',
  IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1900800',
  DB_HOST: 'bench.proxy-abc.us-east-1.rds.amazonaws.com',
  DB_PORT: '5432',
  DB_USER: 'checkout',
  PAYMENT_URL: 'https://api.payments.example.com',
  PAYMENT_API_KEY_SECRET_ID: 'bench/payment-gateway-api-key',
  POWERTOOLS_METRICS_NAMESPACE: 'Bench',
};

/** The worker's bundle as the construct builds it; returns its directory. */
function paymentRetryBundle(): string {
  return deployedBundle('BenchPaymentRetry', 'payment-retry', {
    entry: join(REPO_ROOT, 'lambda', 'payment-retry', 'index.ts'),
    serviceName: PAYMENT_RETRY_SERVICE,
    timeout: Duration.seconds(60),
    memorySize: 256,
    reservedConcurrency: 2,
    bundling: { externalModules: PAYMENT_RETRY_EXTERNAL_MODULES },
  });
}

const deferredBody = (orderId: string) =>
  JSON.stringify({
    eventId: `outbox-${randomUUID()}`,
    type: 'PaymentDeferred',
    orderId,
    customerId: 'c',
    amountCents: 200,
    currency: 'USD',
    paymentToken: 'tok_visa',
    cause: 'circuit-open',
  });

/** The handler's own cost per record: idempotency records in memory, the order work a no-op. */
async function handlerPerRecord(): Promise<{ fresh: number; duplicate: number }> {
  const handler = createPaymentRetryHandler({
    logger: new FakeLogger(),
    metrics: new FakeMetrics(),
    persistenceStore: new InMemoryPersistenceLayer(),
    expiresAfterSeconds: 1_900_800,
    retry: async (orderId) => ({ kind: 'confirmed', orderId, chargeId: 'ch_bench' }),
  });
  return perRecordTimes(handler, () => deferredBody(randomUUID()));
}

/** Seeds `count` PENDING_PAYMENT orders of one line each; returns their ids. */
async function seedDeferred(pool: Pool, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  await pool.query(
    `INSERT INTO orders (id, idempotency_key, customer_id, status, amount_cents, currency, payment_token)
     SELECT id, 'bench-' || id, 'c', 'PENDING_PAYMENT', 200, 'USD', 'tok_visa' FROM unnest($1::uuid[]) AS id`,
    [ids],
  );
  await pool.query(
    `INSERT INTO order_items (order_id, sku, quantity, unit_price_cents)
     SELECT id, 'BENCH-' || (1 + abs(hashtext(id::text)) % 20), 2, 100 FROM unnest($1::uuid[]) AS id`,
    [ids],
  );
  return ids;
}

/** Per-order wall time of the real work on local PostgreSQL and the fake gateway. */
async function againstPostgres(): Promise<void> {
  let db;
  try {
    db = await createTestDatabase();
  } catch (err) {
    console.log(`  payment-retry against PostgreSQL: skipped (${(err as Error).message})`);
    return;
  }
  const admin = new Pool({ connectionString: db.url, max: 2 });
  const pool = createPool(
    {
      database: { mode: 'url', url: db.url },
      AWS_REGION: 'us-east-1',
      ...PAYMENT_RETRY_DATABASE,
      DB_NAMED_STATEMENTS: false,
    },
    {},
    { applicationName: PAYMENT_RETRY_SERVICE, idleInTransactionTimeoutMs: idleInTransactionTimeoutMs() },
  );
  const fake = new FakePaymentGateway();
  const gateway = new HttpPaymentGateway(await fake.listen(), PAYMENT_RETRY_POLICY);
  try {
    await migrate(admin);
    await admin.query(
      "INSERT INTO inventory (sku, available, price_cents) SELECT 'BENCH-' || g, 1000000, 100 FROM generate_series(1, 20) g",
    );
    // Warm up: connections open, statements parsed once by PostgreSQL's caches.
    for (const id of await seedDeferred(admin, 20)) await retryDeferredPayment({ pool, gateway }, id);

    const sequential = await seedDeferred(admin, 200);
    const one: number[] = [];
    for (const id of sequential) {
      const started = performance.now();
      await retryDeferredPayment({ pool, gateway }, id);
      one.push(performance.now() - started);
    }
    console.log(
      `  payment-retry, one order at a time (lock, charge, settle, commit): median ${ms(median(one))}, ` +
        `p90 ${ms([...one].sort((a, b) => a - b)[Math.floor(one.length * 0.9)])}`,
    );

    const handler = createPaymentRetryHandler({
      logger: new FakeLogger(),
      metrics: new FakeMetrics(),
      persistenceStore: new InMemoryPersistenceLayer(),
      expiresAfterSeconds: 1_900_800,
      retry: (orderId) => retryDeferredPayment({ pool, gateway }, orderId),
    });
    const batched = await seedDeferred(admin, 200);
    const perOrder: number[] = [];
    for (let i = 0; i < batched.length; i += 10) {
      const bodies = batched.slice(i, i + 10).map(deferredBody);
      const started = performance.now();
      await handler(sqsEvent(...bodies.map((b) => sqsRecord(b))), lambdaContext());
      perOrder.push((performance.now() - started) / bodies.length);
    }
    const confirmed = (
      await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM orders WHERE status = 'CONFIRMED'")
    ).rows[0].n;
    console.log(
      `  payment-retry, batches of 10 through the handler (in parallel on the worker's pool): ` +
        `${ms(median(perOrder))} per order (median of 20 batches); ${confirmed} orders CONFIRMED`,
    );
  } finally {
    gateway.close();
    await fake.close();
    await pool.end();
    await admin.end();
    await db.drop();
  }
}

/** Prints the payment-retry worker's figures. */
export async function paymentRetryBench(coldInit: ColdInit): Promise<void> {
  printDeployedBundle('payment-retry', paymentRetryBundle(), coldInit);
  const perRecord = await handlerPerRecord();
  console.log(
    '\npayment-retry handler time per record, batch of 10 (median of 200 batches, order work a no-op):',
  );
  console.log(`  new orders:          ${(perRecord.fresh * 1000).toFixed(0)} µs`);
  console.log(`  duplicates skipped:  ${(perRecord.duplicate * 1000).toFixed(0)} µs`);
  console.log('\npayment-retry against local PostgreSQL and the fake gateway (loopback):');
  await againstPostgres();
}
