import { ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { call } from './helpers/harness';

const ROOT = join(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('npm run service:local serves a checkout with nothing but Node (embedded PostgreSQL, fakes)', async () => {
  const base = 20_000 + (process.pid % 5_000) * 2;
  const env = {
    ...process.env,
    DATABASE_URL: '',
    PORT: String(base),
    LOCAL_PAYMENT_PORT: String(base + 1),
    LOCAL_RECOMMENDATIONS_PORT: String(base + 2),
    LOCAL_SQS_PORT: String(base + 3),
    LOCAL_DB_PORT: String(base + 4),
  };
  delete (env as Record<string, string | undefined>).DATABASE_URL;
  const child: ChildProcess = spawn('npm', ['run', '--silent', 'service:local'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (let i = 0; i < 300 && !output.includes('local checkout service ready'); i++) await sleep(100);
    expect(output).toContain('local checkout service ready');
    const url = `http://127.0.0.1:${base}`;
    const admin = { authorization: 'Bearer local-admin-token-not-for-production-0000' };
    expect(
      (
        await call(url, 'PUT', '/admin/inventory/LOCAL-1', {
          body: { available: 2, priceCents: 500 },
          headers: admin,
        })
      ).status,
    ).toBe(200);
    const res = await call(url, 'POST', '/v1/checkout', {
      body: { customerId: 'c1', items: [{ sku: 'LOCAL-1', quantity: 2 }], paymentToken: 'tok_visa' },
      headers: { 'idempotency-key': 'local-test-key-1' },
    });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('CONFIRMED');
    for (let i = 0; i < 50 && !output.includes('fake SQS received'); i++) await sleep(100);
    expect(output).toContain('OrderConfirmed');
  } finally {
    process.kill(-child.pid!, 'SIGTERM');
    await exited;
  }
}, 60_000);
