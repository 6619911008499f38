/**
 * The service's fake dependencies (payment gateway, recommendations, SQS) in a process of
 * their own, for the benchmark: in the load generator's process they answer late as soon
 * as it is busy sending (3x overload), and the service's latency then measures the load
 * generator. Prints one JSON line with their URLs, then serves until SIGTERM; their
 * behaviour changes at run time with `PUT /__control` (service/fakes/controllable-server.ts).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FakePaymentGateway } from '../service/fakes/payment-gateway';
import { FakeRecommendations } from '../service/fakes/recommendations';
import { FakeSqs } from '../service/fakes/sqs';

/** The URLs of the fakes. */
export interface FakeUrls {
  readonly payment: string;
  readonly recommendations: string;
  readonly sqs: string;
}

/** The fakes' process, started by the benchmark. */
export class FakesProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly urls: FakeUrls,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts the fakes (this file, run with tsx) and waits for their URLs. */
  static async start(): Promise<FakesProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', __filename], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, BENCH_FAKES_CHILD: '1' },
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`the fakes exited with ${code} before starting`)));
    });
    return new FakesProcess(child, JSON.parse(line) as FakeUrls);
  }

  /** Sets the payment gateway's behaviour (`ok`, `hang`...). */
  async setPayment(settings: { mode: string }): Promise<void> {
    const res = await fetch(`${this.urls.payment}/__control`, {
      method: 'PUT',
      body: JSON.stringify(settings),
    });
    if (!res.ok) throw new Error(`the fake gateway refused ${JSON.stringify(settings)}: ${res.status}`);
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

async function serve(): Promise<void> {
  const payment = new FakePaymentGateway();
  const recommendations = new FakeRecommendations();
  // The benchmark's queues accept everything and keep nothing: a long run would otherwise
  // hold every message in memory.
  const sqs = new FakeSqs({ onMessage: () => undefined });
  const urls: FakeUrls = {
    payment: await payment.listen(),
    recommendations: await recommendations.listen(),
    sqs: await sqs.listen(),
  };
  const forget = setInterval(() => {
    sqs.messages.length = 0;
    payment.charges.clear();
  }, 5_000);
  process.stdout.write(`${JSON.stringify(urls)}\n`);
  process.once('SIGTERM', () => {
    clearInterval(forget);
    void Promise.all([payment.close(), recommendations.close(), sqs.close()]).then(() => process.exit(0));
  });
}

if (process.env.BENCH_FAKES_CHILD === '1') {
  serve().catch((err) => {
    process.stderr.write(`bench fakes failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
