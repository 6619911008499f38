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
import { createOrderEventsHandler } from '../lambda/order-events/handler';
import { REPO_ROOT, WorkerFunction } from '../lib/constructs/worker-function';
import { InMemoryPersistenceLayer } from '../test/helpers/in-memory-idempotency';
import { FakeLogger, FakeMetrics, lambdaContext, sqsEvent, sqsRecord } from '../test/helpers/lambda';
import { newApp } from '../test/helpers/app';
import { selfSignedCertificate, startTlsServer } from '../test/helpers/tls-server';

const RUNS = Number(process.env.BENCH_RUNS ?? 10);
const WORKERS = ['order-events', 'certificate-probe'] as const;
type Worker = (typeof WORKERS)[number];

/** What each bundle reads from its environment at init (no call is made). */
const INIT_ENV: Record<Worker, Record<string, string>> = {
  'order-events': { IDEMPOTENCY_TABLE_NAME: 'bench', IDEMPOTENCY_EXPIRES_AFTER_SECONDS: '1900800' },
  'certificate-probe': { PROBE_ENDPOINTS: '["shop.example.com"]', POWERTOOLS_METRICS_NAMESPACE: 'Bench' },
};

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;
const ms = (value: number) => `${value.toFixed(1)} ms`;

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

/** Milliseconds a fresh node spends requiring the bundle (median of RUNS), and the whole process. */
function coldInit(dir: string, worker: Worker, sourceMaps: boolean, sdkFromNodeModules: boolean) {
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
  const batch = () =>
    Array.from({ length: 10 }, () =>
      JSON.stringify({
        eventId: `outbox-${randomUUID()}`,
        type: 'OrderConfirmed',
        orderId: randomUUID(),
        amountCents: 1,
      }),
    );
  const time = async (bodies: string[]) => {
    const started = performance.now();
    await handler(sqsEvent(...bodies.map((b) => sqsRecord(b))), lambdaContext());
    return (performance.now() - started) / bodies.length;
  };
  for (let i = 0; i < 20; i++) await time(batch()); // warm up
  const fresh: number[] = [];
  const duplicate: number[] = [];
  for (let i = 0; i < 200; i++) {
    const bodies = batch();
    fresh.push(await time(bodies));
    duplicate.push(await time(bodies));
  }
  return { fresh: median(fresh), duplicate: median(duplicate) };
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
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
