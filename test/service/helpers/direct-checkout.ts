import { Pool, PoolConfig } from 'pg';
import { CheckoutService } from '../../../service/checkout';
import { migrate } from '../../../service/db/migrations';
import { Metrics } from '../../../service/metrics';
import { ChargeOutcome, ChargeRequest, PaymentGateway } from '../../../service/payment-client';
import { Recommender } from '../../../service/recommendations-client';
import { TestDatabase } from './database';

/**
 * A payment gateway whose answers the test scripts: each call takes the next queued
 * answer, or `defaultOutcome`; a call can be held until the test releases it.
 */
export class ScriptedGateway implements PaymentGateway {
  readonly breakerState = 'closed' as const;
  readonly calls: ChargeRequest[] = [];
  defaultOutcome: ChargeOutcome = { kind: 'charged', chargeId: 'ch_scripted' };
  private readonly held: (() => void)[] = [];
  private holdNext = 0;

  /** The next `n` calls wait for {@link releaseHeld}. */
  hold(n = 1): void {
    this.holdNext += n;
  }

  /** Lets every held call answer. */
  releaseHeld(): void {
    for (const release of this.held.splice(0)) release();
  }

  async charge(request: ChargeRequest): Promise<ChargeOutcome> {
    this.calls.push(request);
    if (this.holdNext > 0) {
      this.holdNext--;
      await new Promise<void>((resolve) => this.held.push(resolve));
    }
    return this.defaultOutcome;
  }
}

/** Recommendations that are always there, at no cost. */
export const instantRecommender: Recommender = {
  recommend: async () => ({ items: [{ sku: 'REC-1' }], degraded: false }),
};

/** A CheckoutService wired by hand, on a migrated test database. */
export interface DirectCheckout {
  readonly service: CheckoutService;
  readonly pool: Pool;
  readonly payments: ScriptedGateway;
  readonly metrics: Metrics;
  close(): Promise<void>;
}

export async function startDirectCheckout(
  db: TestDatabase,
  options: { leaseMs?: number; duplicateWaitMs?: number; pool?: PoolConfig } = {},
): Promise<DirectCheckout> {
  const pool = new Pool({ connectionString: db.url, max: 10, ...options.pool });
  pool.on('error', () => undefined);
  await migrate(pool);
  const payments = new ScriptedGateway();
  const metrics = new Metrics();
  const service = new CheckoutService({
    pool,
    payments,
    recommender: instantRecommender,
    metrics,
    currency: 'USD',
    leaseMs: options.leaseMs ?? 30_000,
    duplicateWaitMs: options.duplicateWaitMs ?? 5_000,
    retryAfterSeconds: 1,
  });
  return { service, pool, payments, metrics, close: () => pool.end() };
}
