import { SQSClient } from '@aws-sdk/client-sqs';
import { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Pool } from 'pg';
import { buildHttpApp, ServiceState } from './app';
import { CheckoutService, deferStuckOrders } from './checkout';
import { ServiceConfig } from './config';
import { createPool } from './db/pool';
import { migrate } from './db/migrations';
import { Metrics } from './metrics';
import { OutboxRelay } from './outbox-relay';
import { HttpPaymentGateway, PaymentGateway } from './payment-client';
import { HttpRecommender } from './recommendations-client';

/** A running service, with what tests and the entry point need to observe and stop it. */
export interface RunningService {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly pool: Pool;
  readonly state: ServiceState;
  readonly metrics: Metrics;
  readonly payments: PaymentGateway;
  readonly relay: OutboxRelay;
  /** Graceful shutdown: readiness 503, drain in-flight requests, flush the outbox, close the pool. */
  shutdown(reason: string): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the service: migrations (under an advisory lock), the HTTP listener, the
 * outbox relay, the stuck-order sweeper and the metrics line.
 *
 * Connected as a user that may not run DDL (`checkout` in AWS), it starts only when no
 * migration is pending; otherwise it rejects with `MigrationsNotAppliedError`, whose
 * message tells the operator to run `npm run db:migrate` as the schema owner.
 */
export async function startService(
  config: ServiceConfig,
  logger = pino({ level: config.LOG_LEVEL }),
): Promise<RunningService> {
  const state: ServiceState = { started: false, draining: false };
  const metrics = new Metrics();
  const pool = createPool(config);
  const payments = new HttpPaymentGateway(config.PAYMENT_URL, config);
  const emitMetrics = () =>
    logger.info(metrics.flush({ CircuitBreakerOpen: payments.breakerState === 'closed' ? 0 : 1 }), 'metrics');
  payments.onBreakerStateChange((breaker) => {
    logger.warn({ breaker }, `payment circuit breaker ${breaker}`);
    emitMetrics();
  });

  const checkout = new CheckoutService({
    pool,
    payments,
    recommender: new HttpRecommender(config.RECOMMENDATIONS_URL, config.RECOMMENDATIONS_TIMEOUT_MS),
    metrics,
    currency: config.CURRENCY,
    leaseMs: config.IDEMPOTENCY_LEASE_MS,
    duplicateWaitMs: config.IDEMPOTENCY_WAIT_MS,
    retryAfterSeconds: config.RETRY_AFTER_SECONDS,
  });
  const app = buildHttpApp({
    pool,
    checkout,
    metrics,
    state,
    adminToken: config.ADMIN_TOKEN,
    maxInFlight: config.MAX_IN_FLIGHT,
    maxDbWaiting: config.MAX_DB_WAITING ?? config.DB_POOL_SIZE * 4,
    maxEventLoopDelayMs: config.MAX_EVENT_LOOP_DELAY_MS,
    retryAfterSeconds: config.RETRY_AFTER_SECONDS,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    logger,
  });

  const relay = new OutboxRelay({
    pool,
    sqs: new SQSClient({ region: config.AWS_REGION, maxAttempts: 3 }),
    queueUrls: {
      'order-events': config.ORDER_EVENTS_QUEUE_URL,
      'payment-retry': config.PAYMENT_RETRY_QUEUE_URL,
    },
    batchSize: config.OUTBOX_BATCH_SIZE,
    metrics,
    onError: (err) => logger.warn({ err }, 'outbox relay pass failed; rows stay pending'),
  });

  // Listen first so /health/live and /health/startup answer while migrations run.
  const url = await app.listen({ port: config.PORT, host: config.HOST });
  try {
    const applied = await migrate(pool);
    if (applied.length) logger.info({ applied }, 'migrations applied');
  } catch (err) {
    // Nothing else has started yet: release the port and the connections, then fail.
    logger.error({ err }, 'migrations failed; the service does not start');
    await app.close();
    await pool.end();
    throw err;
  }
  state.started = true;
  relay.start(config.OUTBOX_INTERVAL_MS);

  const sweeper = setInterval(
    () => {
      deferStuckOrders(pool, config.STUCK_ORDER_AFTER_MS)
        .then((n) => {
          if (n > 0) {
            metrics.increment('StuckOrdersDeferred', n);
            logger.warn({ orders: n }, 'deferred orders stuck in PAYMENT_IN_PROGRESS to payment-retry');
          }
        })
        .catch((err) => logger.warn({ err }, 'stuck-order sweep failed'));
    },
    Math.max(1_000, Math.floor(config.STUCK_ORDER_AFTER_MS / 4)),
  );
  sweeper.unref();
  const metricsTimer = setInterval(emitMetrics, config.METRICS_INTERVAL_MS);
  metricsTimer.unref();

  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ reason }, 'shutting down: readiness now fails');
      state.draining = true;
      if (config.SHUTDOWN_DELAY_MS > 0) await sleep(config.SHUTDOWN_DELAY_MS);
      // close() stops accepting connections, answers 503 on kept-alive ones and waits
      // for in-flight requests; the drain timeout bounds that wait.
      const closed = app.close();
      const drained = await Promise.race([
        closed.then(() => true),
        sleep(config.DRAIN_TIMEOUT_MS).then(() => false),
      ]);
      if (!drained) {
        logger.warn(
          { drainTimeoutMs: config.DRAIN_TIMEOUT_MS },
          'drain timeout: closing remaining connections',
        );
        app.server.closeAllConnections();
        await closed;
      }
      clearInterval(sweeper);
      clearInterval(metricsTimer);
      await relay.stop();
      await relay
        .publishPending()
        .catch((err) => logger.warn({ err }, 'final outbox flush failed; rows stay pending'));
      emitMetrics();
      await pool.end();
      logger.info('shutdown complete');
    })();
    return stopping;
  };

  return { app, url, pool, state, metrics, payments, relay, shutdown };
}
