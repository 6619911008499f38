/**
 * Checkout benchmark: the bundled service on loopback against real PostgreSQL and the
 * in-process fakes. Prints figures and the issue 9 performance targets as ratios measured
 * in this run; asserts nothing. Run: `npm run bench:checkout` (about 4 minutes), or
 * `npm run bench:checkout -- --quick` (about 1.5 minutes: shorter scenarios, no breaker
 * or named-statement runs). DATABASE_URL overrides the server; the benchmark creates its
 * own databases and drops them. BENCH_SECONDS overrides the measured seconds per scenario.
 *
 * What it runs, each service built with esbuild as `npm run service:build` builds it and
 * started with SERVICE_NODE_FLAGS:
 *   - round trips: the service behind a proxy that counts round trips on the PostgreSQL
 *     wire (bench/wire-count.ts), at a fixed rate; also the baseline;
 *   - peak (closed loop, 50 clients, each sending when answered, after a 503 when its
 *     Retry-After has passed) of the baseline, the code
 *     before issue 9 (`git archive 931fbef`, one process), and of today's service with
 *     SERVICE_PROCESSES=1 and with one process per vCPU (the default), with the CPU time
 *     of the service's processes (/proc/<pid>/stat of the primary and every worker) per
 *     confirmed checkout;
 *   - pgbench running the checkout's two statements with 50 clients (bench/pgbench.ts);
 *   - per process count: half the peak rate (open loop, the unloaded p99) and 3x the peak
 *     rate (open loop): goodput and the p99 of accepted requests;
 *   - full mode only: the gateway hanging with the breaker on and off, and the peak with
 *     DB_NAMED_STATEMENTS=true beside pgbench in prepared mode (what naming would buy).
 *
 * Fixed-rate runs are open loop on purpose: a closed-loop client that re-sends the moment
 * it gets a 503 turns "3x load" into a retry storm of 15x or more, which measures the load
 * generator, not the service. Their latencies count from when each request was due.
 *
 * Every scenario also prints how busy the machine was: the service's, PostgreSQL's
 * backends', the benchmark's own and everything else's CPU, in cores. The load generator,
 * the fakes, PostgreSQL and the service share the machine's cores: the figures are
 * ratios measured side by side, not capacities.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { Pool } from 'pg';
import { SERVICE_NODE_FLAGS } from '../service/config';
import { migrate } from '../service/db/migrations';
import { TestDatabase, createTestDatabase } from '../test/service/helpers/database';
import { FakesProcess } from './fakes-process';
import { LoadResult, NextCheckout, closedLoop, openLoop } from './load';
import { PGBENCH_SCRIPT_PATH, PgbenchResult, checkPgbenchScript, runPgbench } from './pgbench';
import {
  backendCpuDelta,
  loadAverage,
  machineCpu,
  postgresBackendCpu,
  rssMb,
  selfCpuSeconds,
  treeCpuSeconds,
  treePids,
} from './proc';
import { WireCounter } from './wire-count';

const ROOT = join(__dirname, '..');
const ARGS = new Set(process.argv.slice(2));
const QUICK = ARGS.has('--quick');
const SECONDS = Number(process.env.BENCH_SECONDS ?? (QUICK ? 4 : 10));
const WARMUP_SECONDS = QUICK ? 1 : 2;
/**
 * Warm-up of a freshly started service before its peak is measured: V8 keeps optimizing
 * the hot paths for several seconds, and CPU per checkout measured after 2 s was 20-40%
 * above the steady state (the other scenarios run on a service that is already warm).
 */
const PEAK_WARMUP_SECONDS = QUICK ? 2 : 6;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Carts spread over this many SKUs; one hot SKU serializes on its row lock (docs/checkout-service.md). */
const SKUS = Number(process.env.BENCH_SKUS ?? 500);
/** The code before issue 9: "today's" CPU per checkout in the issue. */
const BASELINE_COMMIT = '931fbef';
const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef0123456789';
const CORES = availableParallelism();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A load run and what it cost. */
interface Measured extends LoadResult {
  readonly label: string;
  /** CPU seconds of the service's processes (primary and workers) per 201. */
  readonly serviceCpuMsPerOk: number;
  /** CPU of PostgreSQL's backends for the bench database, per 201. */
  readonly pgCpuMsPerOk: number;
  /**
   * Cores busy, on average: the service, PostgreSQL's backends, the load generator (this
   * process), the fakes' process, and the rest of the machine (other users included).
   */
  readonly cores: { service: number; postgres: number; bench: number; fakes: number; others: number };
  readonly peakRssMb: number;
  readonly loadAverage: string;
}

/** Processes the benchmark started and has not stopped yet: killed if it fails. */
const children = new Set<ChildProcess>();

/** The fakes' process (payment gateway, recommendations, SQS), started once. */
let fakes: FakesProcess;

/** A started service: its primary's pid and its URL. */
interface Service {
  readonly url: string;
  readonly child: ChildProcess;
  readonly database: TestDatabase;
}

let sequence = 0;
/** A one-line cart over SKUS SKUs with a fresh Idempotency-Key. */
const nextCheckout: NextCheckout = () => {
  const n = ++sequence;
  return {
    body: JSON.stringify({
      customerId: `bench-${n % 1_000}`,
      items: [{ sku: `BENCH-${n % SKUS}`, quantity: 1 }],
      paymentToken: 'tok_visa',
    }),
    key: `bench-${process.pid}-${n}`,
  };
};

/** Bundles `entry` as `npm run service:build` does (same esbuild options), into `outdir`. */
async function bundle(entry: string, outdir: string): Promise<string> {
  await build({
    entryPoints: { service: entry },
    bundle: true,
    platform: 'node',
    target: 'node20',
    outdir,
    external: ['pg-native'],
    sourcemap: true,
    legalComments: 'none',
    logLevel: 'warning',
  });
  return join(outdir, 'service.js');
}

/** The baseline's source from git (read-only: `git archive`), bundled like today's. */
async function bundleBaseline(workdir: string): Promise<string> {
  const source = join(workdir, 'baseline');
  execFileSync('mkdir', ['-p', source]);
  execFileSync('sh', ['-c', `git archive ${BASELINE_COMMIT} service package.json | tar -x -C "${source}"`], {
    cwd: ROOT,
  });
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'));
  return bundle(join(source, 'service', 'main.ts'), join(source, 'dist'));
}

async function seedInventory(url: string): Promise<void> {
  const pool = new Pool({ connectionString: url, max: 1 });
  await pool.query(
    `INSERT INTO inventory (sku, available, price_cents)
     SELECT 'BENCH-' || g, 10000000, 100 FROM generate_series(0, $1::int - 1) g
     ON CONFLICT (sku) DO UPDATE SET available = 10000000`,
    [SKUS],
  );
  await pool.end();
}

/** A database migrated by today's code and seeded: what the service and pgbench run on. */
async function preparedDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  const pool = new Pool({ connectionString: db.url, max: 1 });
  await migrate(pool);
  await pool.end();
  await seedInventory(db.url);
  return db;
}

/** Starts a bundle with production logging (info, to /dev/null) and waits until every process answers. */
async function startService(
  bundlePath: string,
  env: Record<string, string>,
  database: TestDatabase,
  databaseUrl = database.url,
): Promise<Service> {
  const port = await freePort();
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, bundlePath], {
    env: { ...process.env, ...env, DATABASE_URL: databaseUrl, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const url = `http://127.0.0.1:${port}`;
  // Ready several times in a row: with several workers, each one is dealt connections in turn.
  let readyInARow = 0;
  for (let i = 0; i < 200 && readyInARow < 8; i++) {
    const ready = await isReady(`${url}/health/ready`);
    readyInARow = ready ? readyInARow + 1 : 0;
    if (!ready) await sleep(100);
  }
  if (readyInARow < 8) {
    child.kill('SIGKILL');
    throw new Error(`${bundlePath} did not become ready within 20 s`);
  }
  return { url, child, database };
}

/** One readiness probe on a connection of its own (so that every worker gets probes). */
function isReady(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

async function stopService(service: Service): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  const exited = new Promise((r) => service.child.once('exit', r));
  service.child.kill('SIGTERM');
  await exited;
}

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs `load` after `warmupSeconds` of the same load, measuring CPU and RSS over the measured part only. */
async function measure(
  label: string,
  service: Service,
  load: (seconds: number) => Promise<LoadResult>,
  warmupSeconds = WARMUP_SECONDS,
): Promise<Measured> {
  if (warmupSeconds > 0) await load(warmupSeconds);
  const pid = service.child.pid!;
  const pids = treePids(pid);
  let peakRssMb = 0;
  const sampleRss = () => (peakRssMb = Math.max(peakRssMb, ...pids.map(rssMb)));
  const rssTimer = setInterval(sampleRss, 500);
  const snapshot = () => ({
    service: treeCpuSeconds(pid),
    pg: postgresBackendCpu(service.database.name),
    machine: machineCpu(),
    self: selfCpuSeconds().self,
    fakes: treeCpuSeconds(fakes.pid),
  });
  const before = snapshot();
  const result = await load(SECONDS);
  const after = snapshot();
  clearInterval(rssTimer);
  sampleRss();
  const serviceS = after.service - before.service;
  const pgS = backendCpuDelta(before.pg, after.pg);
  const benchS = after.self - before.self;
  const fakesS = after.fakes - before.fakes;
  const busyS = after.machine.busy - before.machine.busy;
  const wall = result.elapsedS;
  const measured: Measured = {
    ...result,
    label,
    serviceCpuMsPerOk: (serviceS * 1000) / result.ok,
    pgCpuMsPerOk: (pgS * 1000) / result.ok,
    cores: {
      service: serviceS / wall,
      postgres: pgS / wall,
      bench: benchS / wall,
      fakes: fakesS / wall,
      others: Math.max(0, busyS - serviceS - pgS - benchS - fakesS) / wall,
    },
    peakRssMb,
    loadAverage: loadAverage(),
  };
  print(measured);
  return measured;
}

const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');

function print(run: Measured): void {
  const c = run.cores;
  console.log(
    `${run.label.padEnd(44)} ${f0(run.okRps).padStart(5)} 201/s  p50 ${f0(run.p50).padStart(4)} ms  ` +
      `p99 ${f0(run.p99).padStart(5)} ms  201-p99 ${f0(run.okP99).padStart(5)} ms  ` +
      `CPU/201: service ${f2(run.serviceCpuMsPerOk)} ms, pg ${f2(run.pgCpuMsPerOk)} ms  ` +
      `cores: service ${f2(c.service)} pg ${f2(c.postgres)} loadgen ${f2(c.bench)} fakes ${f2(c.fakes)} others ${f2(c.others)}  ` +
      `rss ${f0(run.peakRssMb)} MB  load ${run.loadAverage}  ${JSON.stringify(run.statuses)}`,
  );
}

/**
 * Round trips per checkout, counted on the wire: the service talks to PostgreSQL through
 * the counting proxy; one process, a fixed rate, counts from after a warm-up (connections
 * opened, statements seen once) until the relay has published what the load wrote.
 */
async function roundTrips(
  label: string,
  bundlePath: string,
  env: Record<string, string>,
  database: TestDatabase,
): Promise<{ request: number; background: number; byTag: [string, number][] }> {
  const target = new URL(database.url);
  // Background work: the outbox relay and the stuck-order sweep (rows taken with SKIP
  // LOCKED, in a transaction or one statement), and health checks.
  const counter = new WireCounter(target.hostname, Number(target.port || 5432), (sql) =>
    /SKIP LOCKED/i.test(sql) || /^\s*SELECT 1\s*$/i.test(sql) ? 'background' : 'request',
  );
  const port = await counter.start();
  const proxied = new URL(database.url);
  proxied.port = String(port);
  const service = await startService(bundlePath, { ...env, SERVICE_PROCESSES: '1' }, database, proxied.href);
  const rate = 100;
  await openLoop(service.url, nextCheckout, rate, 100, 1);
  await sleep(500);
  counter.reset();
  const result = await openLoop(service.url, nextCheckout, rate, 100, QUICK ? 2 : 4);
  await sleep(600); // the relay's next passes publish what the load wrote
  const counts = counter.counts;
  await stopService(service);
  await counter.stop();
  const request = (counts.byGroup.get('request') ?? 0) / result.ok;
  const background = (counts.byGroup.get('background') ?? 0) / result.ok;
  const byTag = [...counts.byTag]
    .map(([tag, n]) => [tag, n / result.ok] as [string, number])
    .sort((a, b) => b[1] - a[1]);
  console.log(
    `${label.padEnd(44)} ${result.ok} x 201 at ${rate}/s: ${f2(request)} round trips per checkout on the request path, ` +
      `${f2(background)} in the background (outbox relay, sweep)`,
  );
  console.log(`    per checkout: ${byTag.map(([t, n]) => `${t} ${f2(n)}`).join(' | ')}`);
  return { request, background, byTag };
}

function pgbenchAvailable(): boolean {
  return spawnSync('pgbench', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** One verdict line: the figure, the target, met or not. */
function verdict(name: string, figure: string, target: string, met: boolean | undefined): void {
  const mark = met === undefined ? 'n/a' : met ? 'MET' : 'NOT MET';
  console.log(`  ${name.padEnd(38)} ${figure.padEnd(74)} ${target.padEnd(26)} ${mark}`);
}

/** The whole run is bounded: a stuck scenario ends the benchmark, and everything it started. */
const WATCHDOG_MS = 9 * 60_000;

function killChildren(): void {
  for (const child of children) child.kill('SIGKILL');
}

async function main(): Promise<void> {
  setTimeout(() => {
    console.error(`bench: still running after ${WATCHDOG_MS / 60_000} minutes; stopping`);
    killChildren();
    process.exit(1);
  }, WATCHDOG_MS).unref();
  process.once('SIGINT', () => {
    killChildren();
    process.exit(130);
  });
  const scriptState = checkPgbenchScript(SKUS, ARGS.has('--write-pgbench-script'));
  if (scriptState === 'written') console.log(`wrote ${PGBENCH_SCRIPT_PATH}`);
  if (scriptState === 'stale') {
    console.error(
      `${PGBENCH_SCRIPT_PATH} does not match the service's statements any more: ` +
        'run `npm run bench:checkout -- --write-pgbench-script` and commit it',
    );
    process.exit(1);
  }
  const workdir = mkdtempSync(join(tmpdir(), 'bench-checkout-'));
  const [today, baseline] = await Promise.all([
    bundle(join(ROOT, 'service', 'main.ts'), join(workdir, 'today')),
    bundleBaseline(workdir),
  ]);
  const pg = String(execFileSync('psql', ['--version'])).trim();
  console.log(
    `# ${new Date().toISOString()}, ${cpus()[0]?.model ?? 'unknown CPU'} x ${CORES}, node ${process.version}, ${pg}; ` +
      `${SECONDS} s per scenario after ${WARMUP_SECONDS} s warm-up (${PEAK_WARMUP_SECONDS} s for a peak)${QUICK ? ' (--quick)' : ''}; load average ${loadAverage()}`,
  );

  fakes = await FakesProcess.start();
  children.add(fakes.child);
  const sqsUrl = fakes.urls.sqs;
  const env = {
    HOST: '127.0.0.1',
    PAYMENT_URL: fakes.urls.payment,
    RECOMMENDATIONS_URL: fakes.urls.recommendations,
    ORDER_EVENTS_QUEUE_URL: `${sqsUrl}/000000000000/order-events`,
    PAYMENT_RETRY_QUEUE_URL: `${sqsUrl}/000000000000/payment-retry`,
    AWS_ENDPOINT_URL: sqsUrl,
    AWS_ACCESS_KEY_ID: 'bench',
    AWS_SECRET_ACCESS_KEY: 'bench',
    ADMIN_TOKEN,
    LOG_LEVEL: 'info',
    NODE_NO_WARNINGS: '1',
  };
  const databases = {
    today: await preparedDatabase(),
    baseline: await createTestDatabase(),
    pgbench: await preparedDatabase(),
  };
  try {
    // The baseline migrates its own database (its schema is older); seed it once it has.
    await stopService(await startService(baseline, env, databases.baseline));
    await seedInventory(databases.baseline.url);

    console.log('\n## Round trips per checkout, counted on the PostgreSQL wire');
    const trips = await roundTrips('today', today, env, databases.today);
    const baselineTrips = await roundTrips(`baseline ${BASELINE_COMMIT}`, baseline, env, databases.baseline);

    console.log(`\n## Peak: ${CONNECTIONS} clients, closed loop`);
    const closed = (service: Service) => (seconds: number) =>
      closedLoop(service.url, nextCheckout, CONNECTIONS, seconds);
    const peakOf = (label: string, service: Service) =>
      measure(label, service, closed(service), PEAK_WARMUP_SECONDS);
    /**
     * Open loop at `rate`, the warm-up's connections reused by the measured run; up to
     * 1,000 requests outstanding, so that callers a hung gateway holds (two processes x
     * 150 in its bulkhead) do not stop the load generator from sending the others.
     */
    const fixedRate = (service: Service, rate: number) => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1_000 });
      return (seconds: number) => openLoop(service.url, nextCheckout, rate, 1_000, seconds, agent);
    };
    let service = await startService(baseline, env, databases.baseline);
    const baselinePeak = await peakOf(`baseline ${BASELINE_COMMIT}, 1 process`, service);
    await stopService(service);

    /** Peak, half the peak (unloaded) and 3x the peak (overload) for one process count. */
    const perProcessCount = async (processes: number) => {
      const name = processes === 1 ? 'SERVICE_PROCESSES=1' : `${processes} processes (default)`;
      const svc = await startService(
        today,
        { ...env, SERVICE_PROCESSES: String(processes) },
        databases.today,
      );
      const peak = await peakOf(`today, ${name}, peak`, svc);
      const half = Math.max(10, Math.round(peak.okRps / 2));
      const unloaded = await measure(`today, ${name}, @ ${half}/s (half)`, svc, fixedRate(svc, half));
      const triple = Math.round(peak.okRps * 3);
      const overload = await measure(`today, ${name}, @ ${triple}/s (3x)`, svc, fixedRate(svc, triple));
      await stopService(svc);
      return { processes, peak, unloaded, overload };
    };
    const one = await perProcessCount(1);
    const all = CORES > 1 ? await perProcessCount(CORES) : one;

    console.log(`\n## pgbench: the checkout's two statements, ${CONNECTIONS} clients`);
    let bench: PgbenchResult | undefined;
    if (pgbenchAvailable()) {
      bench = await runPgbench({
        url: databases.pgbench.url,
        clients: CONNECTIONS,
        seconds: SECONDS,
        protocol: 'extended',
      });
      console.log(
        `pgbench, unnamed statements (--protocol=extended, as the service sends them): ${f0(bench.tps)} checkouts/s, ` +
          `latency ${f2(bench.latencyMs)} ms, ${bench.failed} failed; load ${loadAverage()}`,
      );
    } else {
      console.log(
        'pgbench: SKIPPED, not installed. Install it with `sudo apt-get install postgresql-contrib` ' +
          '(Debian/Ubuntu: pulls the server package that carries pgbench) and run again; the bench installs nothing.',
      );
    }

    let named: { peak: Measured; pgbench?: PgbenchResult } | undefined;
    if (!QUICK) {
      console.log('\n## Named prepared statements (DB_NAMED_STATEMENTS=true): direct connections only');
      service = await startService(today, { ...env, DB_NAMED_STATEMENTS: 'true' }, databases.today);
      const peak = await peakOf(`today, ${CORES} processes, named, peak`, service);
      await stopService(service);
      let prepared: PgbenchResult | undefined;
      if (bench) {
        prepared = await runPgbench({
          url: databases.pgbench.url,
          clients: CONNECTIONS,
          seconds: SECONDS,
          protocol: 'prepared',
        });
        console.log(
          `pgbench, named statements (--protocol=prepared): ${f0(prepared.tps)} checkouts/s, ` +
            `latency ${f2(prepared.latencyMs)} ms, ${prepared.failed} failed; load ${loadAverage()}`,
        );
      }
      named = { peak, pgbench: prepared };

      console.log('\n## Gateway hanging, at half the peak rate');
      const half = Math.max(10, Math.round(all.peak.okRps / 2));
      // Warm-up 8 s (> 3 attempts x 2 s + backoff) so the figures are the open-breaker
      // steady state; without a breaker every caller waits it out.
      await fakes.setPayment({ mode: 'hang' });
      service = await startService(today, env, databases.today);
      await measure(`gateway hanging, breaker on @ ${half}/s`, service, fixedRate(service, half), 8);
      await stopService(service);
      service = await startService(today, { ...env, PAYMENT_BREAKER_THRESHOLD: '1000000' }, databases.today);
      await measure(`gateway hanging, breaker off @ ${half}/s`, service, fixedRate(service, half));
      await stopService(service);
      await fakes.setPayment({ mode: 'ok' });
    }

    console.log(
      `\n## Targets (issue 9, Performance): ratios from this run; load average now ${loadAverage()}`,
    );
    verdict(
      'database round trips per checkout',
      `${f2(trips.request)} on the request path (+${f2(trips.background)} relay/sweep); baseline ${f2(baselineTrips.request)} (+${f2(baselineTrips.background)})`,
      '<= 3',
      trips.request <= 3,
    );
    const cpuRatio = one.peak.serviceCpuMsPerOk / baselinePeak.serviceCpuMsPerOk;
    verdict(
      'service CPU per confirmed checkout',
      `${f2(one.peak.serviceCpuMsPerOk)} ms (1 process) vs ${f2(baselinePeak.serviceCpuMsPerOk)} ms baseline = ${f2(cpuRatio)}x; all cores ${f2(all.peak.serviceCpuMsPerOk)} ms`,
      '<= 0.33x baseline',
      cpuRatio <= 1 / 3,
    );
    for (const run of all === one ? [one] : [one, all]) {
      verdict(
        `peak vs pgbench, ${run.processes} process${run.processes > 1 ? 'es' : ''}`,
        bench
          ? `${f0(run.peak.okRps)}/s vs pgbench ${f0(bench.tps)}/s = ${f0((run.peak.okRps / bench.tps) * 100)}%`
          : 'pgbench not installed',
        '>= 60%',
        bench ? run.peak.okRps / bench.tps >= 0.6 : undefined,
      );
    }
    for (const run of all === one ? [one] : [one, all]) {
      const goodput = run.overload.okRps / run.peak.okRps;
      const p99Ratio = run.overload.okP99 / run.unloaded.okP99;
      verdict(
        `3x overload, ${run.processes} process${run.processes > 1 ? 'es' : ''}: goodput`,
        `${f0(run.overload.okRps)}/s vs peak ${f0(run.peak.okRps)}/s = ${f0(goodput * 100)}%`,
        '>= 95% of peak',
        goodput >= 0.95,
      );
      verdict(
        `3x overload, ${run.processes} process${run.processes > 1 ? 'es' : ''}: accepted p99`,
        `${f0(run.overload.okP99)} ms vs unloaded (half peak) ${f0(run.unloaded.okP99)} ms = ${f2(p99Ratio)}x`,
        '<= 2x unloaded',
        p99Ratio <= 2,
      );
    }
    verdict(
      'one process per vCPU',
      `SERVICE_PROCESSES=1: ${f0(one.peak.okRps)}/s, ${f2(one.peak.serviceCpuMsPerOk)} ms CPU/201 | ` +
        `${all.processes} (default): ${f0(all.peak.okRps)}/s, ${f2(all.peak.serviceCpuMsPerOk)} ms CPU/201`,
      `default = ${CORES} vCPUs`,
      all.processes === CORES,
    );
    if (named) {
      console.log(
        `  named statements (direct connections only): peak ${f0(named.peak.okRps)}/s vs ${f0(all.peak.okRps)}/s unnamed, ` +
          `service CPU ${f2(named.peak.serviceCpuMsPerOk)} vs ${f2(all.peak.serviceCpuMsPerOk)} ms/201, ` +
          `PostgreSQL CPU ${f2(named.peak.pgCpuMsPerOk)} vs ${f2(all.peak.pgCpuMsPerOk)} ms/201` +
          (named.pgbench && bench ? `; pgbench ${f0(named.pgbench.tps)}/s vs ${f0(bench.tps)}/s` : ''),
      );
    }
    const rss = Math.max(
      baselinePeak.peakRssMb,
      one.peak.peakRssMb,
      all.peak.peakRssMb,
      all.overload.peakRssMb,
    );
    console.log(`  peak RSS of one process: ${f0(rss)} MB (target < 200 MB)`);
  } finally {
    await fakes.stop();
    await Promise.all(Object.values(databases).map((db) => db.drop()));
    rmSync(workdir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
