/**
 * What a fleet instance runs, checked on the artifacts the templates carry: the user data
 * passes shellcheck, its systemd units pass systemd-analyze verify, and the environment
 * file it writes starts the real service bundle against PostgreSQL and the bundled fakes.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { AddressInfo, Server, Socket, createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Template } from 'aws-cdk-lib/assertions';
import { FLEET_PATHS, FLEET_UNITS, NODE_BINARY, fileWrittenBy } from '../../lib/fleet/boot-script';
import { buildServiceBundle } from '../../lib/fleet/service-bundle';
import { METRICS_NAMESPACE } from '../../service/metrics';
import { FakeSqs } from '../../service/fakes/sqs';
import { buildTestApp, shippedConfig } from '../helpers/app';
import { freePort } from '../helpers/ports';
import { requireTool } from '../helpers/tools';
import { parseEnvironmentFile, unitValues, userDataOf } from '../helpers/user-data';
import {
  ADMIN_DATABASE_URL,
  TestDatabase,
  createTestDatabase,
  describeWithPostgres,
} from '../service/helpers/database';

const production = buildTestApp(shippedConfig('default')).stacks;
const lean = buildTestApp(shippedConfig('lean')).stacks;
const scripts: [string, string][] = [
  ['production primary', userDataOf(Template.fromStack(production.primary))],
  ['production standby', userDataOf(Template.fromStack(production.standby!))],
  ['lean primary (sandbox)', userDataOf(Template.fromStack(lean.primary))],
];

function file(script: string, path: string): string {
  const content = fileWrittenBy(script, path);
  if (content === undefined) throw new Error(`the user data writes no ${path}`);
  return content;
}

const unitPaths = (script: string) =>
  [FLEET_UNITS.service, FLEET_UNITS.fakePayment, FLEET_UNITS.fakeRecommendations]
    .map((unit) => `/etc/systemd/system/${unit}`)
    .filter((path) => fileWrittenBy(script, path) !== undefined);

const hasShellcheck = requireTool('shellcheck', 'the fleet user data and its scripts must pass shellcheck');
const hasSystemdAnalyze = requireTool(
  'systemd-analyze',
  "the fleet's systemd units must pass systemd-analyze verify",
);

describe.each(scripts)('the %s user data', (_name, script) => {
  (hasShellcheck ? test : test.skip)('passes shellcheck, and so does the secrets script it writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleet-shellcheck-'));
    const files = { 'user-data.sh': script, 'fetch-secrets.sh': file(script, FLEET_PATHS.secretsScript) };
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const run = spawnSync('shellcheck', ['--shell=bash', '--severity=style', ...Object.keys(files)], {
      cwd: dir,
      encoding: 'utf8',
    });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  (hasSystemdAnalyze ? test : test.skip)('writes systemd units that pass systemd-analyze verify', () => {
    // GIVEN a root with the host's unit library, the units the user data writes, and
    // stand-ins for the executables they name (the instance installs the real ones)
    const root = mkdtempSync(join(tmpdir(), 'fleet-systemd-'));
    mkdirSync(join(root, 'usr/lib/systemd'), { recursive: true });
    cpSync('/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(root, 'etc/systemd/system'), { recursive: true });
    for (const executable of [NODE_BINARY, FLEET_PATHS.secretsScript]) {
      mkdirSync(join(root, executable, '..'), { recursive: true });
      writeFileSync(join(root, executable), '#!/bin/sh\n');
      chmodSync(join(root, executable), 0o755);
    }
    const units = unitPaths(script);
    expect(units.length).toBeGreaterThan(0);
    for (const path of units) writeFileSync(join(root, path), file(script, path));
    // WHEN verified THEN systemd has nothing to say (it warns on stderr with exit 0)
    const run = spawnSync(
      'systemd-analyze',
      ['verify', `--root=${root}`, '--man=no', ...units.map((p) => p.split('/').pop()!)],
      { encoding: 'utf8' },
    );
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  test('stops the service more slowly than it drains: TimeoutStopSec above SHUTDOWN_DELAY_MS + DRAIN_TIMEOUT_MS', () => {
    const env = new Map(parseEnvironmentFile(file(script, FLEET_PATHS.environmentFile)));
    const unit = file(script, FLEET_PATHS.serviceUnit);
    const budgetSeconds = (Number(env.get('SHUTDOWN_DELAY_MS')) + Number(env.get('DRAIN_TIMEOUT_MS'))) / 1000;
    expect(budgetSeconds).toBe(45);
    expect(Number(unitValues(unit, 'TimeoutStopSec')[0])).toBeGreaterThan(budgetSeconds);
  });
});

/** Whether openssl is installed (it answers `version`, not `--version`); CI=true requires it. */
function hasOpenssl(): boolean {
  const probe = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return true;
  const message =
    'openssl is not installed: the bundle test makes a TLS certificate for its stand-in RDS Proxy';
  if (process.env.CI === 'true') throw new Error(`${message}. CI=true requires it.`);
  process.stderr.write(`SKIPPED: ${message}.\n`);
  return false;
}

/**
 * A stand-in for RDS Proxy: accepts PostgreSQL's SSLRequest, terminates TLS with a
 * certificate for `localhost`, and forwards the plain stream to the local PostgreSQL (whose
 * trust authentication accepts the IAM token the service sends as its password).
 */
async function startTlsProxy(
  key: string,
  cert: string,
  upstream: URL,
): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    sockets.add(client);
    client.once('data', (first) => {
      // SSLRequest: Int32 length 8, Int32 code 80877103
      if (first.length !== 8 || first.readInt32BE(4) !== 80877103) {
        client.destroy();
        return;
      }
      client.write('S');
      const secure = new TLSSocket(client, { isServer: true, key, cert });
      const db = connect(Number(upstream.port || 5432), upstream.hostname);
      sockets.add(db);
      secure.pipe(db).pipe(secure);
      const close = () => {
        secure.destroy();
        db.destroy();
      };
      secure.on('error', close).on('close', close);
      db.on('error', close).on('close', close);
    });
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen({ port: 0, host: '::', ipv6Only: false }, resolve));
  return { port: (server.address() as AddressInfo).port, server };
}

async function waitForStatus(
  url: string,
  status: number,
  timeoutMs: number,
  child: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (child.exitCode !== null)
      throw new Error(`the process exited with ${child.exitCode} before ${url} answered`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      last = String(response.status);
      if (response.status === status) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
}

describeWithPostgres(
  'the environment file the lean (sandbox) user data writes starts the real bundle',
  () => {
    const script = userDataOf(Template.fromStack(lean.primary));
    const children: ChildProcess[] = [];
    const output: string[] = [];
    let dir: string;
    let database: TestDatabase;
    let proxy: { port: number; server: Server } | undefined;
    let sqs: FakeSqs;
    let service: ChildProcess;
    let servicePort: number;
    const openssl = hasOpenssl();

    const run = (args: string[], env: NodeJS.ProcessEnv, label: string): ChildProcess => {
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      for (const stream of [child.stdout!, child.stderr!]) {
        stream.setEncoding('utf8');
        stream.on('data', (chunk: string) => output.push(`[${label}] ${chunk}`));
      }
      return child;
    };

    beforeAll(async () => {
      if (!openssl) return;
      // The bundle, as the asset holds it (same esbuild call), in the layout of /opt/checkout/app.
      dir = mkdtempSync(join(tmpdir(), 'fleet-bundle-'));
      const app = join(dir, 'app');
      buildServiceBundle(app);
      const tls = spawnSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
          '-addext',
          'subjectAltName=DNS:localhost',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { encoding: 'utf8' },
      );
      if (tls.status !== 0) throw new Error(`openssl failed: ${tls.stderr}`);

      // The schema, applied as the owner (the fleet's checkout user may not run DDL).
      database = await createTestDatabase();
      const migrate = spawnSync(process.execPath, [join(app, 'migrate.js')], {
        env: { ...process.env, DATABASE_URL: database.url },
        encoding: 'utf8',
      });
      if (migrate.status !== 0) throw new Error(`migrations failed: ${migrate.stderr}`);
      proxy = await startTlsProxy(
        readFileSync(join(dir, 'key.pem'), 'utf8'),
        readFileSync(join(dir, 'cert.pem'), 'utf8'),
        new URL(ADMIN_DATABASE_URL),
      );
      sqs = new FakeSqs(() => undefined);
    });

    afterAll(async () => {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
      await sqs?.close();
      await new Promise<void>((resolve) => (proxy ? proxy.server.close(() => resolve()) : resolve()));
      await database?.drop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    (openssl ? test : test.skip)(
      'with only hosts and ports made local, the service connects as checkout over IAM + TLS and /health/ready answers 200',
      async () => {
        const app = join(dir, 'app');
        const sqsUrl = await sqs.listen();

        // GIVEN the fakes, started as their units say, on free ports instead of 4001/4002
        const fakePorts: Record<string, number> = {};
        for (const unitName of [FLEET_UNITS.fakePayment, FLEET_UNITS.fakeRecommendations]) {
          const unit = file(script, `/etc/systemd/system/${unitName}`);
          expect(unit).toMatch(/NOT FOR PRODUCTION/);
          const env = Object.fromEntries(
            unitValues(unit, 'Environment').map((e) => e.split('=') as [string, string]),
          );
          const port = await freePort();
          fakePorts[env.PORT] = port;
          run([join(app, 'fakes.js')], { PATH: process.env.PATH, ...env, PORT: String(port) }, env.FAKE);
        }

        // AND the environment file, every deploy-time value replaced by its local stand-in
        const rendered = parseEnvironmentFile(file(script, FLEET_PATHS.environmentFile));
        const names = rendered.map(([name]) => name);
        expect(names).toEqual(
          expect.arrayContaining(['DB_IAM_AUTH', 'DB_HOST', 'DB_PORT', 'DB_USER', 'AWS_REGION']),
        );
        expect(names).not.toContain('DATABASE_URL');
        expect(names).not.toContain('ADMIN_TOKEN');
        servicePort = await freePort();
        const orderEvents = `${sqsUrl}/000000000000/order-events`;
        const paymentRetry = `${sqsUrl}/000000000000/payment-retry`;
        const local = (name: string, value: string): string => {
          switch (name) {
            case 'DB_HOST':
              return 'localhost'; // the proxy endpoint
            case 'DB_PORT':
              return String(proxy!.port); // 5432, RDS Proxy's port
            case 'PORT':
              return String(servicePort);
            case 'HOST':
              return '127.0.0.1';
            case 'ORDER_EVENTS_QUEUE_URL':
              return orderEvents;
            case 'PAYMENT_RETRY_QUEUE_URL':
              return paymentRetry;
            case 'PAYMENT_URL':
            case 'RECOMMENDATIONS_URL': {
              const url = new URL(value);
              url.port = String(fakePorts[url.port]);
              return url.toString().replace(/\/$/, '');
            }
            default:
              if (value.includes('CFN_'))
                throw new Error(`${name}=${value}: a deploy-time value this test does not stand in for`);
              return value;
          }
        };
        const env: NodeJS.ProcessEnv = {
          PATH: process.env.PATH,
          ...Object.fromEntries(rendered.map(([name, value]) => [name, local(name, value)])),
          // What the instance has besides the file: the secrets file, and the role's credentials.
          ADMIN_TOKEN: 'local-admin-token-for-the-fleet-boot-test-0000',
          AWS_ACCESS_KEY_ID: 'testing',
          AWS_SECRET_ACCESS_KEY: 'testing',
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_ENDPOINT_URL: sqsUrl,
          // Local only: the test's database, and the CA of the stand-in proxy's certificate
          // (RDS Proxy's chains to a public CA Node.js already trusts).
          DB_NAME: database.name,
          NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem'),
          SERVICE_PROCESSES: '2',
        };
        expect(env.DB_IAM_AUTH).toBe('true');
        expect(env.DB_USER).toBe('checkout');

        // WHEN the service starts the way the unit's ExecStart says
        const unit = file(script, FLEET_PATHS.serviceUnit);
        const [binary, ...args] = unitValues(unit, 'ExecStart')[0].split(' ');
        expect(binary).toBe(NODE_BINARY);
        service = run(
          args.map((a) => a.replace(FLEET_PATHS.app, app)),
          env,
          'service',
        );

        // THEN it is ready: connected through "RDS Proxy" with an IAM token as checkout
        await waitForStatus(`http://127.0.0.1:${servicePort}/health/ready`, 200, 45_000, service).catch(
          (err) => {
            throw new Error(`${(err as Error).message}\n${output.join('')}`);
          },
        );
        const sessions = await database.query<{ usename: string; ssl: boolean }>(
          'SELECT usename FROM pg_stat_activity WHERE datname = $1 AND usename = $2',
          [database.name, 'checkout'],
        );
        expect(sessions.length).toBeGreaterThan(0);
      },
      90_000,
    );

    (openssl ? test : test.skip)(
      'its embedded-metric lines carry the namespace, dimension and names the fleet alarms read',
      async () => {
        // The service writes one metrics line per METRICS_INTERVAL_MS (10 s) per process.
        const deadline = Date.now() + 25_000;
        let emf: Record<string, unknown> | undefined;
        while (!emf && Date.now() < deadline) {
          emf = output
            .join('')
            .split('\n')
            .map((line) => line.replace(/^\[[^\]]+\] /, ''))
            .filter((line) => line.includes('"_aws"'))
            .map((line) => JSON.parse(line) as Record<string, unknown>)[0];
          if (!emf) await new Promise((resolve) => setTimeout(resolve, 500));
        }
        expect(emf).toBeDefined();
        const aws = emf!._aws as {
          CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string }[] }[];
        };
        expect(aws.CloudWatchMetrics[0].Namespace).toBe(METRICS_NAMESPACE);
        expect(aws.CloudWatchMetrics[0].Dimensions).toEqual([['Service']]);
        expect(emf!.Service).toBe('checkout');
        const names = aws.CloudWatchMetrics[0].Metrics.map((m) => m.Name);
        expect(names).toEqual(expect.arrayContaining(['CircuitBreakerOpen', 'RequestsShed']));
      },
      40_000,
    );

    (openssl ? test : test.skip)(
      'SIGTERM to the main process only (KillMode=mixed) stops every worker cleanly within the stop timeout',
      async () => {
        const unit = file(script, FLEET_PATHS.serviceUnit);
        expect(unitValues(unit, 'KillMode')).toEqual(['mixed']);
        const stopTimeoutMs = Number(unitValues(unit, 'TimeoutStopSec')[0]) * 1000;
        const exited = new Promise<number | null>((resolve) => service.once('exit', (code) => resolve(code)));
        const started = Date.now();
        service.kill('SIGTERM');
        const code = await exited;
        expect(code).toBe(0);
        expect(Date.now() - started).toBeLessThan(stopTimeoutMs);
      },
      90_000,
    );
  },
);
