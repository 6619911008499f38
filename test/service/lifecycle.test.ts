import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { Metrics } from '../../service/metrics';
import { OutboxRelay } from '../../service/outbox/relay';
import { createPool } from '../../service/db/pool';
import { SERVICE_NODE_FLAGS, loadServiceConfig } from '../../service/config';
import { FakePaymentGateway } from '../../service/fakes/payment-gateway';
import { FakeRecommendations } from '../../service/fakes/recommendations';
import { TestDatabase, createTestDatabase, postgresUnavailableReason } from './helpers/database';
import { checkout, checkoutBody, newKey, serviceEnv, setStock, startHarness } from './helpers/harness';
import { OFFLINE_AWS_ENV } from '../helpers/offline-aws-env';
import { MotoSqs, motoAvailable } from './helpers/moto';
import { waitFor } from './helpers/wait-for';

const ROOT = join(__dirname, '..', '..');
/** PostgreSQL (found by the Jest global setup) and moto_server; without them the suites are skipped. */
const ready = postgresUnavailableReason() === undefined && motoAvailable();
const describeIfReady = ready ? describe : describe.skip;
let db: TestDatabase;
let moto: MotoSqs;
let queues: { 'order-events': string; 'payment-retry': string };

beforeAll(async () => {
  if (!ready) return;
  db = await createTestDatabase();
  moto = await MotoSqs.start();
  queues = {
    'order-events': await moto.createQueue('order-events'),
    'payment-retry': await moto.createQueue('payment-retry'),
  };
  Object.assign(process.env, OFFLINE_AWS_ENV, { AWS_ENDPOINT_URL: moto.endpoint });
}, 60_000);
afterAll(async () => {
  await moto?.stop();
  await db?.drop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const queueEnv = () => ({
  ORDER_EVENTS_QUEUE_URL: queues['order-events'],
  PAYMENT_RETRY_QUEUE_URL: queues['payment-retry'],
});

describeIfReady('transactional outbox', () => {
  test('confirmed orders reach order-events and deferred ones payment-retry, with an eventId', async () => {
    const h = await startHarness(db, { ...queueEnv(), PAYMENT_RETRIES: '0', PAYMENT_BREAKER_THRESHOLD: '1' });
    try {
      const url = h.service.url;
      await setStock(url, 'OUT-1', 10);
      const confirmed = await checkout(
        url,
        newKey(),
        checkoutBody({ items: [{ sku: 'OUT-1', quantity: 1 }] }),
      );
      h.payment.set({ mode: 'error' });
      const deferred = await checkout(
        url,
        newKey(),
        checkoutBody({ items: [{ sku: 'OUT-1', quantity: 1 }] }),
      );
      expect(deferred.body.status).toBe('PENDING_PAYMENT');
      await sleep(300);

      const events = await moto.drain(queues['order-events']);
      expect(events).toEqual([
        expect.objectContaining({
          type: 'OrderConfirmed',
          orderId: confirmed.body.orderId,
          eventId: `${confirmed.body.orderId as string}/OrderConfirmed`,
        }),
      ]);
      const retries = await moto.drain(queues['payment-retry']);
      expect(retries).toEqual([
        expect.objectContaining({
          type: 'PaymentDeferred',
          orderId: deferred.body.orderId,
          paymentToken: 'tok_visa',
          cause: 'retries-exhausted',
        }),
      ]);
      expect(await db.query('SELECT id FROM outbox WHERE published_at IS NULL')).toEqual([]);
    } finally {
      await h.stop();
    }
  });

  test('while SQS is unreachable rows stay pending, and are published once it is back', async () => {
    await db.query(
      `INSERT INTO outbox (destination, payload) VALUES ('order-events', '{"type":"Probe","n":1}'), ('order-events', '{"type":"Probe","n":2}')`,
    );
    const pool = createPool(loadServiceConfig(serviceEnv(db, 'http://127.0.0.1:9', 'http://127.0.0.1:9')));
    const metrics = new Metrics();
    const relay = (endpoint: string) =>
      new OutboxRelay({
        pool,
        sqs: new SQSClient({ endpoint, region: 'us-east-1', maxAttempts: 1 }),
        queueUrls: queues,
        batchSize: 10,
        metrics,
        sendTimeoutMs: 2_000,
      });
    try {
      expect(await relay('http://127.0.0.1:9').publishPending()).toBe(0);
      expect(metrics.value('OutboxPublishFailures')).toBe(2);
      expect((await db.query('SELECT id FROM outbox WHERE published_at IS NULL')).length).toBe(2);

      expect(await relay(moto.endpoint).publishPending()).toBe(2);
      const probes = (await moto.drain(queues['order-events'])).filter((e) => e.type === 'Probe');
      expect(probes.map((p) => p.n).sort()).toEqual([1, 2]);
    } finally {
      await pool.end();
    }
  });
});

describeIfReady('the bundled service (dist/service.js)', () => {
  test('SIGTERM under load: in-flight requests finish, every accepted order is persisted once, the outbox is flushed', async () => {
    execFileSync('npm', ['run', '--silent', 'service:build'], { cwd: ROOT, stdio: 'ignore' });
    const payment = new FakePaymentGateway();
    const recommendations = new FakeRecommendations();
    payment.set({ latencyMs: 150 });
    const env = {
      ...process.env,
      ...serviceEnv(db, await payment.listen(), await recommendations.listen(), {
        ...queueEnv(),
        LOG_LEVEL: 'info',
      }),
    };
    const child: ChildProcess = spawn(
      process.execPath,
      [...SERVICE_NODE_FLAGS, join(ROOT, 'dist', 'service.js')],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      let url = '';
      for (let i = 0; i < 100 && !url; i++) {
        url = /"url":"(http:\/\/[^"]+)"/.exec(stdout)?.[1] ?? '';
        if (!url) await sleep(100);
      }
      expect(url).not.toBe('');
      await setStock(url, 'TERM-1', 100_000);
      await moto.drain(queues['order-events']);

      const accepted: string[] = [];
      let inFlightAtSigterm = 0;
      let sigtermAt = Infinity;
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const started = Date.now();
          const res = await checkout(
            url,
            newKey('term'),
            checkoutBody({ items: [{ sku: 'TERM-1', quantity: 1 }] }),
          ).catch(() => undefined);
          if (!res) return; // listener closed: the instance is gone from the pool
          if (res.status === 201) {
            accepted.push(res.body.orderId as string);
            if (started < sigtermAt && Date.now() > sigtermAt) inFlightAtSigterm++;
          }
          if (res.status === 503) return;
        }
      };
      const workers = Promise.all(Array.from({ length: 10 }, worker));
      await sleep(700);
      sigtermAt = Date.now();
      child.kill('SIGTERM');
      const code = await exited;
      stop = true;
      await workers;

      expect(code).toBe(0);
      expect(stdout).toContain('shutdown complete');
      expect(inFlightAtSigterm).toBeGreaterThan(0); // requests in flight at SIGTERM were answered 201
      const rows = await db.query<{ id: string; n: string }>(
        'SELECT o.id, count(*) OVER (PARTITION BY o.idempotency_key) AS n FROM orders o WHERE o.id = ANY($1)',
        [accepted],
      );
      expect(rows.length).toBe(accepted.length);
      expect(rows.every((r) => Number(r.n) === 1)).toBe(true);
      expect(await db.query('SELECT id FROM outbox WHERE published_at IS NULL')).toEqual([]);
      const events = await moto.drain(queues['order-events']);
      const eventOrders = new Set(events.map((e) => e.orderId));
      expect(accepted.every((id) => eventOrders.has(id))).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await payment.close();
      await recommendations.close();
    }
  });

  test('a bad environment stops startup with every bad variable named', () => {
    execFileSync('npm', ['run', '--silent', 'service:build'], { cwd: ROOT, stdio: 'ignore' });
    let failure: { status: number | null; stderr: string } | undefined;
    try {
      execFileSync(process.execPath, [join(ROOT, 'dist', 'service.js')], {
        env: { PATH: process.env.PATH, PAYMENT_URL: 'ftp://x', ADMIN_TOKEN: 'short', DB_POOL_SIZE: 'lots' },
        stdio: 'pipe',
      });
    } catch (err) {
      failure = {
        status: (err as { status: number }).status,
        stderr: String((err as { stderr: Buffer }).stderr),
      };
    }
    expect(failure?.status).toBe(78);
    expect(failure?.stderr).toMatch(/DATABASE_URL: is required/);
    expect(failure?.stderr).toMatch(/PAYMENT_URL: must be an http\(s\) URL of the payment gateway/);
    expect(failure?.stderr).toMatch(/ADMIN_TOKEN: must be at least 32 characters/);
    expect(failure?.stderr).toMatch(/DB_POOL_SIZE: must be a number/);
  });
});

describeIfReady('one process per vCPU (node:cluster)', () => {
  /** The JSON log lines a process tree has written so far. */
  const logLines = (out: string) =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { pid: number; msg: string; url?: string; req?: { url?: string } });

  test('SERVICE_PROCESSES=2: two workers answer, a crashed one is replaced, SIGTERM ends them all within the drain budget', async () => {
    // GIVEN the service started as `npm run service` does, with two worker processes
    const payment = new FakePaymentGateway();
    const recommendations = new FakeRecommendations();
    const env = {
      ...process.env,
      ...serviceEnv(db, await payment.listen(), await recommendations.listen(), {
        ...queueEnv(),
        SERVICE_PROCESSES: '2',
        LOG_LEVEL: 'info',
        DRAIN_TIMEOUT_MS: '3000',
      }),
    };
    const child = spawn(
      process.execPath,
      [...SERVICE_NODE_FLAGS, '--import', 'tsx', join(ROOT, 'service', 'main.ts')],
      {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const listening = () => logLines(out).filter((l) => l.msg === 'checkout service listening');
    const readyPids = () =>
      new Set(
        logLines(out)
          .filter((l) => l.msg === 'incoming request' && l.req?.url === '/health/ready')
          .map((l) => l.pid),
      );
    /** Asks /health/ready on new connections (the primary deals them out in turn) until `pids` answered. */
    const answeredBy = async (url: string, pids: number[]) =>
      waitFor(
        async () => {
          const res = await fetch(`${url}/health/ready`, { headers: { connection: 'close' } });
          expect(res.status).toBe(200);
          const seen = readyPids();
          return pids.every((p) => seen.has(p));
        },
        {
          timeoutMs: 10_000,
          intervalMs: 50,
          message: `/health/ready was not answered by every worker (${pids})`,
        },
      );
    try {
      await waitFor(() => listening().length === 2, { timeoutMs: 60_000, intervalMs: 100, message: out });
      const [first, second] = listening();
      expect(first.url).toBe(second.url);
      const workers = [first.pid, second.pid];

      // THEN two distinct worker processes (not the primary) answer on the one port
      expect(new Set(workers).size).toBe(2);
      expect(workers).not.toContain(child.pid);
      await answeredBy(first.url!, workers);

      // WHEN a worker crashes THEN another takes its place
      process.kill(first.pid, 'SIGKILL');
      await waitFor(() => listening().length === 3, { timeoutMs: 30_000, intervalMs: 100, message: out });
      const replacement = listening()[2].pid;
      expect(workers).not.toContain(replacement);
      await answeredBy(first.url!, [second.pid, replacement]);

      // WHEN the primary gets SIGTERM THEN every worker shuts down cleanly and it exits 0,
      // within the drain budget (3 s) and a margin
      const sigtermAt = Date.now();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(Date.now() - sigtermAt).toBeLessThan(3_000 + 2_000);
      const completed = logLines(out)
        .filter((l) => l.msg === 'shutdown complete')
        .map((l) => l.pid);
      expect(completed.sort()).toEqual([second.pid, replacement].sort());
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await payment.close();
      await recommendations.close();
    }
  });
});
