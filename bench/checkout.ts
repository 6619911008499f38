/**
 * Checkout benchmark: the bundled service (dist/service.js) on loopback against real
 * PostgreSQL and the in-process fakes, loaded with autocannon. Prints figures; asserts
 * nothing. Run: `npm run bench:checkout` (DATABASE_URL overrides the server; the
 * benchmark creates its own database and drops it).
 *
 * Scenarios (each BENCH_SECONDS, default 10):
 *   1. healthy dependencies, closed loop (BENCH_CONNECTIONS clients, each sending its
 *      next request when the last is answered): peak throughput, p50, p99
 *   2. healthy at a fixed rate of half that peak (open loop): latency when not saturated
 *   3. gateway hanging at the same fixed rate, breaker on (default config) vs breaker
 *      effectively off: what the breaker buys, without queueing in the way
 *   4. overload: requests offered at 3x the peak rate (open loop): goodput and the p99 of
 *      accepted requests
 * and the service's peak RSS under load.
 *
 * Fixed-rate runs are open loop on purpose: a closed-loop client that re-sends the
 * moment it gets a 503 turns "3x load" into a retry storm of 15x or more, which measures
 * the load generator, not the service. Their latencies are corrected for coordinated
 * omission by autocannon (a request that could not be sent on time counts as waiting).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { SERVICE_NODE_FLAGS } from '../service/config';
import { FakePaymentGateway } from '../service/fakes/payment-gateway';
import { FakeRecommendations } from '../service/fakes/recommendations';
import { FakeSqs } from '../service/fakes/sqs';
import { createTestDatabase } from '../test/service/helpers/database';

const ROOT = join(__dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Carts spread over this many SKUs; one hot SKU serializes on its row lock (docs/checkout-service.md). */
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
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, join(ROOT, 'dist', 'service.js')], {
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

/** How a scenario loads the service. */
interface Shape {
  /** Closed loop: this many clients. Open loop: the most requests in flight at once. */
  readonly connections: number;
  /** Requests per second offered in total (open loop); closed loop when absent. */
  readonly rate?: number;
  /**
   * Unmeasured seconds of the same load first: a fresh process has a cold JIT and opens
   * its pool's connections on demand, which otherwise lands in the first half second's
   * p99; longer where a steady state takes time (the breaker opening).
   *
   * @default 2
   */
  readonly warmupSeconds?: number;
}

let sequence = 0;
/** A checkout body and a fresh Idempotency-Key, carts spread over SKUS. */
function nextCheckout(tag: string): { body: string; key: string } {
  const n = ++sequence;
  return {
    body: JSON.stringify({
      customerId: `bench-${n % 1_000}`,
      items: [{ sku: `BENCH-${n % SKUS}`, quantity: 1 }],
      paymentToken: 'tok_visa',
    }),
    key: `bench-${tag}-${process.pid}-${n}`,
  };
}

const percentile = (sorted: number[], p: number) => sorted[Math.floor(sorted.length * p)] ?? NaN;

/** Samples the service's RSS every 250 ms until stopped; returns the peak. */
function rssSampler(pid: number): () => number {
  let peak = rssMb(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 250);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

async function load(label: string, url: string, pid: number, shape: Shape): Promise<Run> {
  const run = (seconds: number) =>
    shape.rate
      ? openLoop(label, url, pid, shape.rate, shape.connections, seconds)
      : closedLoop(label, url, pid, shape.connections, seconds);
  await run(shape.warmupSeconds ?? 2);
  return run(SECONDS);
}

/**
 * Open loop: request i is due at start + i / rate, whatever happened to the others, and
 * its latency counts from when it was due (so a late send counts as waiting: no
 * coordinated omission). At most `maxInFlight` requests are outstanding; one that finds
 * no room is counted as `dropped` (the client gave up), never silently skipped.
 */
async function openLoop(
  label: string,
  url: string,
  pid: number,
  rate: number,
  maxInFlight: number,
  seconds: number,
): Promise<Run> {
  const agent = new Agent({ keepAlive: true, maxSockets: maxInFlight });
  const target = new URL('/v1/checkout', url);
  const statuses: Record<string, number> = {};
  const all: number[] = [];
  const ok: number[] = [];
  const tag = label.replace(/[^A-Za-z0-9]+/g, '-');
  const send = (due: number) =>
    new Promise<void>((resolve) => {
      const { body, key } = nextCheckout(tag);
      const done = (status: string) => {
        const ms = performance.now() - due;
        statuses[status] = (statuses[status] ?? 0) + 1;
        all.push(ms);
        if (status === '201') ok.push(ms);
        resolve();
      };
      const req = request(
        target,
        {
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
        },
        (res) => {
          res.resume();
          res.on('end', () => done(String(res.statusCode)));
        },
      );
      req.on('error', () => done('error'));
      req.end(body);
    });

  const stopRss = rssSampler(pid);
  const total = Math.round(rate * seconds);
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait >= 1) await sleep(wait);
    if (inFlight.size >= maxInFlight) {
      statuses.dropped = (statuses.dropped ?? 0) + 1;
      continue;
    }
    const pending = send(due).then(() => void inFlight.delete(pending));
    inFlight.add(pending);
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - start) / 1000;
  const peakRssMb = stopRss();
  agent.destroy();
  all.sort((a, b) => a - b);
  ok.sort((a, b) => a - b);
  return {
    label,
    rps: all.length / elapsedS,
    okRps: ok.length / elapsedS,
    p50: percentile(all, 0.5),
    p99: percentile(all, 0.99),
    okP99: percentile(ok, 0.99),
    statuses,
    peakRssMb,
  };
}

/** Closed loop (autocannon): each client sends its next request when the last is answered. */
async function closedLoop(
  label: string,
  url: string,
  pid: number,
  connections: number,
  seconds: number,
): Promise<Run> {
  const stopRss = rssSampler(pid);
  const okLatencies: number[] = [];
  const statuses: Record<string, number> = {};
  const tag = label.replace(/[^A-Za-z0-9]+/g, '-');
  let finish: (result: autocannon.Result) => void = () => undefined;
  const done = new Promise<autocannon.Result>((resolve) => (finish = resolve));
  const instance = autocannon(
    {
      url,
      connections,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          path: '/v1/checkout',
          setupRequest: (req) => {
            const { body, key } = nextCheckout(tag);
            return {
              ...req,
              method: 'POST',
              path: '/v1/checkout',
              body,
              headers: { 'content-type': 'application/json', 'idempotency-key': key },
            };
          },
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
  const peakRssMb = stopRss();
  okLatencies.sort((a, b) => a - b);
  const ok = statuses['201'] ?? 0;
  return {
    label,
    rps: result.requests.average,
    okRps: ok / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    okP99: percentile(okLatencies, 0.99),
    statuses,
    peakRssMb,
  };
}

function print(run: Run): void {
  console.log(
    `${run.label.padEnd(34)} ${run.rps.toFixed(0).padStart(6)} req/s  ${run.okRps.toFixed(0).padStart(6)} 201/s  ` +
      `p50 ${run.p50.toFixed(0).padStart(5)} ms  p99 ${run.p99.toFixed(0).padStart(5)} ms  201-p99 ${run.okP99.toFixed(0).padStart(5)} ms  ` +
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
  const scenario = async (label: string, extra: Record<string, string>, shape: Shape, setup: () => void) => {
    setup();
    const { url, child } = await startService({ ...env, ...extra });
    for (let i = 0; i < SKUS; i++) {
      await fetch(`${url}/admin/inventory/BENCH-${i}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ available: 10_000_000, priceCents: 100 }),
      });
    }
    const run = await load(label, url, child.pid!, shape);
    print(run);
    runs.push(run);
    await stopService(child);
    sqs.messages.length = 0;
    payment.charges.clear();
    return run;
  };

  console.log(`# ${SECONDS}s per scenario, 2-core loopback, PostgreSQL on the same machine`);
  const peak = await scenario(
    `healthy, ${CONNECTIONS} clients (closed loop)`,
    {},
    { connections: CONNECTIONS },
    () => payment.set({ mode: 'ok' }),
  );
  const half = Math.max(10, Math.round(peak.okRps / 2));
  const fixed = { connections: 200, rate: half };
  await scenario(`healthy @ ${half}/s`, {}, fixed, () => payment.set({ mode: 'ok' }));
  // The breaker-on run warms up for 8 s (> 3 attempts x 2 s + backoff) so its figures
  // are the open-breaker steady state; without a breaker every caller waits it out.
  const breakerOn = await scenario(
    `gateway hanging, breaker on @ ${half}/s`,
    {},
    { ...fixed, warmupSeconds: 8 },
    () => payment.set({ mode: 'hang' }),
  );
  const breakerOff = await scenario(
    `gateway hanging, breaker off @ ${half}/s`,
    { PAYMENT_BREAKER_THRESHOLD: '1000000' },
    fixed,
    () => payment.set({ mode: 'hang' }),
  );
  const triple = Math.round(peak.okRps * 3);
  const overload = await scenario(
    `overload @ ${triple}/s (3x peak)`,
    {},
    { connections: 300, rate: triple },
    () => payment.set({ mode: 'ok' }),
  );

  console.log(
    `open breaker: p99 ${breakerOn.p99.toFixed(0)} ms (target < 50 ms) vs ${breakerOff.p99.toFixed(0)} ms without a breaker`,
  );
  console.log(
    `goodput at 3x: ${((overload.okRps / peak.okRps) * 100).toFixed(0)}% of healthy peak (target >= 80%), ` +
      `accepted p99 ${overload.okP99.toFixed(0)} ms`,
  );
  console.log(`peak RSS: ${Math.max(...runs.map((r) => r.peakRssMb)).toFixed(0)} MB (target < 200 MB)`);
  await Promise.all([payment.close(), recommendations.close(), sqs.close()]);
  await db.drop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
