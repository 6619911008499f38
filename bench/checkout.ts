/**
 * Checkout benchmark: the bundled service (dist/service.js) on loopback against real
 * PostgreSQL and the in-process fakes, loaded with autocannon. Prints figures; asserts
 * nothing. Run: `npm run bench:checkout` (DATABASE_URL overrides the server; the
 * benchmark creates its own database and drops it).
 *
 * Scenarios (each BENCH_SECONDS, default 10):
 *   1. healthy dependencies: throughput, p50, p99
 *   2. gateway hanging, breaker on (default config) vs breaker effectively off
 *   3. overload: 3x the connections that saturate scenario 1: goodput and accepted p99
 * and the service's peak RSS under load.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { FakePaymentGateway } from '../service/fakes/payment-gateway';
import { FakeRecommendations } from '../service/fakes/recommendations';
import { FakeSqs } from '../service/fakes/sqs';
import { createTestDatabase } from '../test/service/helpers/database';

const ROOT = join(__dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Carts spread over this many SKUs; one hot SKU serializes on its row lock (see README). */
const SKUS = Number(process.env.BENCH_SKUS ?? 500);
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  label: string;
  rps: number;
  okRps: number;
  p50: number;
  p99: number;
  okP99: number;
  statuses: Record<string, number>;
  peakRssMb: number;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts the bundle with production logging (info, to /dev/null) and waits for readiness. */
async function startService(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'service.js')], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    const ready = await fetch(`${url}/health/ready`).then(
      (r) => r.ok,
      () => false,
    );
    if (ready) return { url, child };
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error('service did not become ready within 10 s');
}

async function stopService(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

async function load(
  label: string,
  url: string,
  pid: number,
  connections: number,
  warmupSeconds = 0,
): Promise<Run> {
  if (warmupSeconds > 0) {
    // Unmeasured: lets the breaker see the failures that open it.
    await warm(url, connections, warmupSeconds);
  }
  let n = 0;
  let peakRssMb = rssMb(pid);
  const sampler = setInterval(() => (peakRssMb = Math.max(peakRssMb, rssMb(pid))), 250);
  const okLatencies: number[] = [];
  const statuses: Record<string, number> = {};
  const tag = label.replace(/[^A-Za-z0-9]+/g, '-');
  let finish: (result: autocannon.Result) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve) => (finish = resolve));
  const instance = autocannon(
    {
      url,
      connections,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          path: '/v1/checkout',
          setupRequest: (req) => ({
            ...req,
            method: 'POST',
            path: '/v1/checkout',
            body: JSON.stringify({
              customerId: `bench-${n % 1_000}`,
              items: [{ sku: `BENCH-${n % SKUS}`, quantity: 1 }],
              paymentToken: 'tok_visa',
            }),
            headers: {
              'content-type': 'application/json',
              'idempotency-key': `bench-${tag}-${process.pid}-${++n}`,
            },
          }),
        },
      ],
    },
    (_err, result) => finish(result),
  );
  instance.on('response', (_client, statusCode, _bytes, responseTime) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (statusCode === 201) okLatencies.push(responseTime);
  });
  const result = await done;
  clearInterval(sampler);
  okLatencies.sort((a, b) => a - b);
  const ok = statuses['201'] ?? 0;
  return {
    label,
    rps: result.requests.average,
    okRps: ok / SECONDS,
    p50: result.latency.p50,
    p99: result.latency.p99,
    okP99: okLatencies[Math.floor(okLatencies.length * 0.99)] ?? NaN,
    statuses,
    peakRssMb,
  };
}

async function warm(url: string, connections: number, seconds: number): Promise<void> {
  let n = 0;
  await autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => ({
          ...req,
          method: 'POST',
          path: '/v1/checkout',
          body: JSON.stringify({
            customerId: 'warm',
            items: [{ sku: 'BENCH-0', quantity: 1 }],
            paymentToken: 'tok_visa',
          }),
          headers: {
            'content-type': 'application/json',
            'idempotency-key': `warm-${process.pid}-${Date.now()}-${++n}`,
          },
        }),
      },
    ],
  });
}

function print(run: Run): void {
  console.log(
    `${run.label.padEnd(34)} ${run.rps.toFixed(0).padStart(6)} req/s  ${run.okRps.toFixed(0).padStart(6)} 201/s  ` +
      `p50 ${String(run.p50).padStart(5)} ms  p99 ${String(run.p99).padStart(5)} ms  201-p99 ${String(run.okP99).padStart(5)} ms  ` +
      `rss ${run.peakRssMb.toFixed(0)} MB  ${JSON.stringify(run.statuses)}`,
  );
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', '--silent', 'service:build'], { cwd: ROOT, stdio: 'inherit' });
  const db = await createTestDatabase();
  const payment = new FakePaymentGateway();
  const recommendations = new FakeRecommendations();
  const sqs = new FakeSqs();
  const sqsUrl = await sqs.listen();
  const env = {
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: db.url,
    PAYMENT_URL: await payment.listen(),
    RECOMMENDATIONS_URL: await recommendations.listen(),
    ORDER_EVENTS_QUEUE_URL: `${sqsUrl}/000000000000/order-events`,
    PAYMENT_RETRY_QUEUE_URL: `${sqsUrl}/000000000000/payment-retry`,
    AWS_ENDPOINT_URL: sqsUrl,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    ADMIN_TOKEN,
    LOG_LEVEL: 'info',
    NODE_NO_WARNINGS: '1',
  };
  const runs: Run[] = [];
  const scenario = async (
    label: string,
    extra: Record<string, string>,
    connections: number,
    setup: () => void,
    warmupSeconds = 0,
  ) => {
    setup();
    const { url, child } = await startService({ ...env, ...extra });
    for (let i = 0; i < SKUS; i++) {
      await fetch(`${url}/admin/inventory/BENCH-${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ available: 10_000_000, priceCents: 100 }),
      });
    }
    const run = await load(label, url, child.pid!, connections, warmupSeconds);
    print(run);
    runs.push(run);
    await stopService(child);
    sqs.messages.length = 0;
    payment.charges.clear();
  };

  console.log(
    `# ${SECONDS}s per scenario, ${CONNECTIONS} connections (3x: ${CONNECTIONS * 3}), 2-core loopback`,
  );
  await scenario('healthy', {}, CONNECTIONS, () => payment.set({ mode: 'ok' }));
  // The breaker-on run skips its first 8 s (> 3 attempts x 2 s + backoff) so its figures
  // are the open-breaker steady state; without a breaker every caller waits it out.
  await scenario('gateway hanging, breaker on', {}, CONNECTIONS, () => payment.set({ mode: 'hang' }), 8);
  await scenario('gateway hanging, breaker off', { PAYMENT_BREAKER_THRESHOLD: '1000000' }, CONNECTIONS, () =>
    payment.set({ mode: 'hang' }),
  );
  await scenario(`overload (${CONNECTIONS * 3} connections)`, {}, CONNECTIONS * 3, () =>
    payment.set({ mode: 'ok' }),
  );

  const [healthy, , , overload] = runs;
  console.log(
    `goodput at 3x: ${((overload.okRps / healthy.okRps) * 100).toFixed(0)}% of healthy peak (target >= 80%)`,
  );
  console.log(`peak RSS: ${Math.max(...runs.map((r) => r.peakRssMb)).toFixed(0)} MB (target < 200 MB)`);
  await Promise.all([payment.close(), recommendations.close(), sqs.close()]);
  await db.drop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
