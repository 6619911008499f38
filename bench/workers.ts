/**
 * Lambda worker benchmark: prints figures, asserts nothing. Run: `npm run bench:workers`.
 *
 * Per worker (order-events, certificate-probe):
 *   1. the minified bundle exactly as `cdk synth` builds it (the WorkerFunction preset's
 *      esbuild settings), with the AWS SDK clients left to the runtime (what deploys) and,
 *      for comparison, bundled in;
 *   2. cold init: a fresh `node` process requiring the bundle, the median of BENCH_RUNS
 *      (default 10), with and without `--enable-source-maps` (the preset sets it). With the
 *      SDK left out, NODE_PATH points at this repository's node_modules, standing in for
 *      the runtime's copy in /var/runtime/node_modules;
 *   3. the handler's time per record on a batch of 10: order-events with Powertools batch
 *      and idempotency over an in-memory persistence layer (the handler's own cost, not
 *      DynamoDB's round trips), new events and then the same events again; the probe
 *      against 10 endpoints on a local TLS server (needs openssl), per endpoint.
 *
 * The inventory reconciler (it uses no SDK client, so it has one bundle: as deployed) gets
 * the same bundle and cold-init figures, and then runs against a local PostgreSQL (needs
 * one at DATABASE_URL, default postgres://postgres@127.0.0.1:5432, as the tests do) with
 * the service's schema and order histories of growing size: the time to cancel expired
 * orders (per order) and to recount the ledger (the drift statement, which reads every
 * order line), against its 20 s statement timeout.
 *
 * Figures are for this machine (2 shared cores, x86_64 Node 20), not for Lambda's arm64;
 * compare them with each other and with docs/workers.md.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { parseProbeEndpoint } from '../lambda/certificate-probe/contract';
import { createProbeHandler } from '../lambda/certificate-probe/probe';
import { readCertificate } from '../lambda/certificate-probe/tls';
import { RECONCILER_DATABASE } from '../lambda/inventory-reconciler/contract';
import { measureDrift } from '../lambda/inventory-reconciler/drift';
import { releaseExpiredOrders } from '../lambda/inventory-reconciler/release';
import { createOrderEventsHandler } from '../lambda/order-events/handler';
import { PAYMENT_RETRY_INIT_ENV, paymentRetryBench } from './payment-retry';
import { RECONCILER_EXTERNAL_MODULES } from '../lib/constructs/inventory-reconciler';
import { REPO_ROOT, WorkerFunction } from '../lib/constructs/worker-function';
import { InMemoryPersistenceLayer } from '../test/helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics } from '../test/helpers/lambda';
import { newApp } from '../test/helpers/app';
import { createTestDatabase } from '../test/service/helpers/database';
import { migrate } from '../service/db/migrations';
import { Client, Pool } from 'pg';
import { selfSignedCertificate, startTlsServer } from '../test/helpers/tls-server';
import { deployedBundle, kb, median, ms, perRecordTimes, printDeployedBundle } from './worker-bench';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const WORKERS = ['order-events', 'certificate-probe'] as const;
type Worker = (typeof WORKERS)[number];

/** What each bundle reads from its environment at init (no call is made). */
const INIT_ENV: Record<Worker | 'inventory-reconciler' | 'payment-retry', Record<string, string>> = {
  'payment-retry': PAYMENT_RETRY_INIT_ENV,
  'inventory-reconciler': {
    HOLD_MS: '1900800000',
    DB_IAM_AUTH: 'true',
    DB_HOST: 'bench.proxy-abc.us-east-1.rds.amazonaws.com',
    DB_PORT: '5432',
    DB_USER: 'checkout',
    POWERTOOLS_METRICS_NAMESPACE: 'Bench',
  },
  'order-events': { IDEMPOTENCY_TABLE_NAME: 'bench', IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1900800' },
  'certificate-probe': { PROBE_ENDPOINTS: '["shop.example.com"]', POWERTOOLS_METRICS_NAMESPACE: 'Bench' },
};

/** Synthesizes one WorkerFunction per worker and returns each bundle's directory. */
function bundles(externalModules?: string[]): Record<Worker, string> {
  const app: App = newApp();
  const stack = new Stack(app, 'Bench', { env: { account: '111111111111', region: 'us-east-1' } });
  const functions = WORKERS.map(
    (name) =>
      new WorkerFunction(stack, name, {
        entry: join(REPO_ROOT, 'lambda', name, 'index.ts'),
        serviceName: name,
        timeout: Duration.seconds(30),
        memorySize: 256,
        reservedConcurrency: 2,
        bundling: externalModules ? { externalModules } : undefined,
      }),
  );
  const assembly = app.synth();
  return Object.fromEntries(
    functions.map((f, i) => {
      const code = (f.function.node.defaultChild as CfnFunction).code as { s3Key: string };
      return [WORKERS[i], join(assembly.directory, `asset.${code.s3Key.replace(/\.zip$/, '')}`)];
    }),
  ) as Record<Worker, string>;
}

/** The inventory reconciler's bundle as deployed (its construct's externals), and its directory. */
function reconcilerBundle(): string {
  return deployedBundle('BenchReconciler', 'inventory-reconciler', {
    entry: join(REPO_ROOT, 'lambda', 'inventory-reconciler', 'index.ts'),
    serviceName: 'inventory-reconciler',
    timeout: Duration.seconds(90),
    memorySize: 256,
    reservedConcurrency: 1,
    bundling: { externalModules: RECONCILER_EXTERNAL_MODULES },
  });
}

/** Milliseconds a fresh node spends requiring the bundle (median of RUNS), and the whole process. */
function coldInit(
  dir: string,
  worker: Worker | 'inventory-reconciler' | 'payment-retry',
  sourceMaps: boolean,
  sdkFromNodeModules: boolean,
) {
  const script =
    'const c=process.cpuUsage(),t=performance.now();require(process.argv[1]);const u=process.cpuUsage(c);' +
    'process.stdout.write(JSON.stringify([performance.now()-t,(u.user+u.system)/1000]))';
  const inits: number[] = [];
  const cpus: number[] = [];
  const processes: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const flags = ['--no-warnings', ...(sourceMaps ? ['--enable-source-maps'] : [])];
    const run = spawnSync(process.execPath, [...flags, '-e', script, join(dir, 'index.js')], {
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'us-east-1',
        ...INIT_ENV[worker],
        ...(sdkFromNodeModules ? { NODE_PATH: join(REPO_ROOT, 'node_modules') } : {}),
      },
    });
    processes.push(performance.now() - started);
    if (run.status !== 0) throw new Error(`${worker} bundle failed to load: ${run.stderr}`);
    const [wall, cpu] = JSON.parse(run.stdout) as [number, number];
    inits.push(wall);
    cpus.push(cpu);
  }
  return { init: median(inits), cpu: median(cpus), process: median(processes) };
}

/** The floor the SDK sets: a fresh node requiring one client from node_modules, nothing else. */
function sdkFloor(client: string): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = spawnSync(
      process.execPath,
      [
        '--no-warnings',
        '-e',
        `const t=performance.now();require('${client}');process.stdout.write(String(performance.now()-t))`,
      ],
      { encoding: 'utf8', cwd: REPO_ROOT },
    );
    times.push(Number(run.stdout));
  }
  return median(times);
}

async function orderEventsPerRecord(): Promise<{ fresh: number; duplicate: number }> {
  const handler = createOrderEventsHandler({
    logger: new FakeLogger(),
    metrics: new FakeMetrics(),
    persistenceStore: new InMemoryPersistenceLayer(),
    expiresAfterSeconds: 1_900_800,
    apply: async (event) => ({
      eventId: event.eventId,
      type: event.type,
      orderId: event.orderId,
      via: 'log',
    }),
  });
  return perRecordTimes(handler, () =>
    JSON.stringify({
      eventId: `outbox-${randomUUID()}`,
      type: 'OrderConfirmed',
      orderId: randomUUID(),
      amountCents: 1,
    }),
  );
}

async function probePerEndpoint(): Promise<number | undefined> {
  if (spawnSync('openssl', ['version']).status !== 0) return undefined;
  const server = await startTlsServer(selfSignedCertificate(30));
  try {
    const handler = createProbeHandler({
      endpoints: Array.from({ length: 10 }, () => parseProbeEndpoint(`localhost:${server.port}`)),
      namespace: 'Bench',
      timeoutMs: 5_000,
      readCertificate,
      putMetricData: async () => ({}),
      logger: new FakeLogger(),
    });
    for (let i = 0; i < 5; i++) await handler();
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const started = performance.now();
      await handler();
      times.push((performance.now() - started) / 10);
    }
    return median(times);
  } finally {
    await server.close();
  }
}

/**
 * The reconciler's two statements against histories of `orders` orders (2 lines each,
 * over 200 SKUs; a quarter each PAYMENT_IN_PROGRESS, PENDING_PAYMENT, CONFIRMED,
 * PAYMENT_DECLINED), `expired` of the pending ones past the hold: the cancellations (one
 * statement each) and the recount. Seeded with SQL, counted as migration 0005 counts.
 */
async function reconcilerRuns(sizes: readonly number[], expired: number): Promise<void> {
  let db;
  try {
    db = await createTestDatabase();
  } catch (err) {
    console.log(`  inventory-reconciler: skipped (no PostgreSQL: ${(err as Error).message})`);
    return;
  }
  const pool = new Pool({ connectionString: db.url, max: 2 });
  const client = new Client({
    connectionString: db.url,
    statement_timeout: RECONCILER_DATABASE.DB_STATEMENT_TIMEOUT_MS,
  });
  try {
    await migrate(pool);
    await client.connect();
    await db.query(
      "INSERT INTO inventory (sku, available, price_cents) SELECT 'B-' || g, 1000000000, 100 FROM generate_series(1, 200) g",
    );
    let seeded = 0;
    for (const size of sizes) {
      await db.query(
        `INSERT INTO orders (id, idempotency_key, customer_id, status, amount_cents, currency, payment_token, released_at, updated_at)
         SELECT gen_random_uuid(), 'bench-' || g, 'c',
                (ARRAY['PAYMENT_IN_PROGRESS', 'PENDING_PAYMENT', 'CONFIRMED', 'PAYMENT_DECLINED'])[g % 4 + 1],
                200, 'USD', 't', CASE WHEN g % 4 = 3 THEN now() END, now()
           FROM generate_series($1::int + 1, $2::int) g`,
        [seeded, size],
      );
      await db.query(
        `INSERT INTO order_items (order_id, sku, quantity, unit_price_cents)
         SELECT o.id, 'B-' || (1 + abs(hashtext(o.id::text || s)) % 200), 1, 100
           FROM orders o, generate_series(1, 2) s
          WHERE NOT EXISTS (SELECT FROM order_items oi WHERE oi.order_id = o.id)
         ON CONFLICT DO NOTHING`,
      );
      seeded = size;
      await db.query(
        `WITH units AS (
           SELECT oi.sku, sum(oi.quantity) AS units FROM order_items oi JOIN orders o ON o.id = oi.order_id
            WHERE o.status IN ('PAYMENT_IN_PROGRESS', 'PENDING_PAYMENT', 'CONFIRMED') GROUP BY oi.sku)
         UPDATE inventory i SET counted_units = i.available + coalesce(u.units, 0)
           FROM inventory j LEFT JOIN units u ON u.sku = j.sku WHERE j.sku = i.sku`,
      );
      await db.query('ANALYZE');
      const lines = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM order_items'))[0].n;
      await db.query(
        `UPDATE orders SET updated_at = now() - interval '30 days'
          WHERE id IN (SELECT id FROM orders WHERE status = 'PENDING_PAYMENT' AND updated_at > now() - interval '1 day' LIMIT $1)`,
        [expired],
      );
      const started = performance.now();
      const released = await releaseExpiredOrders(client, {
        holdMs: 22 * 86_400_000,
        batchSize: 100,
        deadline: Number.POSITIVE_INFINITY,
        reason: 'bench',
      });
      const releaseMs = performance.now() - started;
      const driftTimes: number[] = [];
      let drift = 0;
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        drift = (await measureDrift(client)).driftUnits;
        driftTimes.push(performance.now() - t);
      }
      console.log(
        `  ${String(size).padStart(8)} orders, ${String(lines).padStart(8)} lines: ` +
          `${released.cancelled.length} cancelled in ${ms(releaseMs)} (${ms(releaseMs / Math.max(1, released.cancelled.length))} each); ` +
          `recount ${ms(median(driftTimes))} (median of 5), drift ${drift}`,
      );
    }
  } finally {
    await client.end().catch(() => undefined);
    await pool.end();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const external = bundles();
  const bundled = bundles([]);
  console.log(`node ${process.version} on ${process.arch}; cold init = median of ${RUNS} fresh processes\n`);
  console.log('worker             SDK              bundle       map     init  init+maps  init CPU  process');
  for (const worker of WORKERS) {
    for (const [label, dirs, fromNodeModules] of [
      ['from runtime', external, true],
      ['bundled', bundled, false],
    ] as const) {
      const dir = dirs[worker];
      const size = statSync(join(dir, 'index.js')).size;
      const map = statSync(join(dir, 'index.js.map')).size;
      const plain = coldInit(dir, worker, false, fromNodeModules);
      const mapped = coldInit(dir, worker, true, fromNodeModules);
      console.log(
        `${worker.padEnd(18)} ${label.padEnd(12)} ${kb(size).padStart(10)} ${kb(map).padStart(9)} ${ms(plain.init).padStart(8)} ${ms(mapped.init).padStart(10)} ${ms(mapped.cpu).padStart(9)} ${ms(mapped.process).padStart(8)}`,
      );
    }
  }
  console.log(
    `\nthe SDK alone (a fresh node requiring one client): @aws-sdk/client-dynamodb ${ms(sdkFloor('@aws-sdk/client-dynamodb'))}, ` +
      `@aws-sdk/client-cloudwatch ${ms(sdkFloor('@aws-sdk/client-cloudwatch'))}`,
  );
  // What the deployed bundles hold (the SDK left to the runtime).
  for (const worker of WORKERS) {
    const map = JSON.parse(readFileSync(join(external[worker], 'index.js.map'), 'utf8')) as {
      sources: string[];
    };
    const packages = new Set(
      map.sources.map((s) => /node_modules\/((@[^/]+\/)?[^/]+)/.exec(s)?.[1] ?? 'lambda/ (own code)'),
    );
    console.log(`\n${worker} bundle contains: ${[...packages].sort().join(', ')}`);
  }

  const orderEvents = await orderEventsPerRecord();
  console.log('\nhandler time per record, batch of 10 (median of 200 batches):');
  console.log(`  order-events, new events:          ${(orderEvents.fresh * 1000).toFixed(0)} µs`);
  console.log(`  order-events, duplicates skipped:  ${(orderEvents.duplicate * 1000).toFixed(0)} µs`);
  const probe = await probePerEndpoint();
  console.log(
    probe === undefined
      ? '  certificate-probe: skipped (openssl not installed)'
      : `  certificate-probe, per endpoint (local TLS handshake, 10 in parallel): ${ms(probe)}`,
  );

  printDeployedBundle('inventory-reconciler', reconcilerBundle(), (dir, sourceMaps) =>
    coldInit(dir, 'inventory-reconciler', sourceMaps, true),
  );
  console.log('\ninventory-reconciler against local PostgreSQL (1 000 expired orders per size):');
  await reconcilerRuns([10_000, 100_000, 500_000], 1_000);

  await paymentRetryBench((dir, sourceMaps) => coldInit(dir, 'payment-retry', sourceMaps, true));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
