import { FastifyInstance } from 'fastify';
import pino from 'pino';
import { Pool } from 'pg';
import { buildHttpApp, ServiceState } from './app';
import { CheckoutService } from './checkout';
import { deferStuckOrders } from './orders/stuck-order-sweep';
import { ServiceConfig } from './config';
import { DatabaseGate, gateStatements } from './db/gate';
import { createPool } from './db/pool';
import { ConnectionTracker } from './http/connections';
import { InFlightWork } from './http/in-flight';
import { migrate } from './db/migrations';
import { Metrics } from './metrics';
import { OutboxRelay, createSqsClient } from './outbox/relay';
import { startPaymentApiKey } from './payment-api-key';
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
  /**
   * Graceful shutdown: readiness 503, close the listener and idle connections, drain
   * in-flight requests, flush the outbox, close the pool; every step after the listener
   * closes within the drain budget (DRAIN_TIMEOUT_MS).
   */
  shutdown(reason: string): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `work` settled before `deadline` (epoch ms); it is not cancelled either way. */
async function settledBy(work: Promise<unknown>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([
      work.then(
        () => true,
        () => true,
      ),
      expired,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

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
  // The gateway's API key first: a secret that cannot be read stops the start here, with
  // its reason, before anything listens or connects.
  const apiKey = await startPaymentApiKey(config, logger);
  const state: ServiceState = { started: false, draining: false };
  const metrics = new Metrics();
  const pool = createPool(config);
  const databaseGate = new DatabaseGate({
    maxConcurrent: config.DB_POOL_SIZE,
    latencyBudgetMs: config.MAX_DB_LATENCY_MS,
    queueBudgetMs: config.MAX_DB_QUEUE_MS,
  });
  gateStatements(pool, databaseGate);
  const payments = new HttpPaymentGateway(config.PAYMENT_URL, { ...config, apiKey });
  // Every worker process runs its own relay (and stuck-order sweep): rows are taken with
  // FOR UPDATE SKIP LOCKED, so processes and instances never send the same row at once.
  const relay = new OutboxRelay({
    pool,
    sqs: createSqsClient({ region: config.AWS_REGION, timeoutMs: config.SQS_TIMEOUT_MS }),
    queueUrls: {
      'order-events': config.ORDER_EVENTS_QUEUE_URL,
      'payment-retry': config.PAYMENT_RETRY_QUEUE_URL,
    },
    batchSize: config.OUTBOX_BATCH_SIZE,
    metrics,
    sendTimeoutMs: config.SQS_TIMEOUT_MS,
    maxBackoffMs: config.OUTBOX_MAX_BACKOFF_MS,
    logger,
  });
  const emitMetrics = () =>
    logger.info(
      metrics.flush({ CircuitBreakerOpen: payments.breakerState === 'closed' ? 0 : 1, ...relay.gauges() }),
      'metrics',
    );
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
  const work = new InFlightWork(config.MAX_IN_FLIGHT);
  const app = buildHttpApp({
    pool,
    checkout,
    metrics,
    state,
    adminToken: config.ADMIN_TOKEN,
    work,
    maxDbWaiting: config.MAX_DB_WAITING ?? config.DB_POOL_SIZE * 4,
    databaseGate,
    maxEventLoopDelayMs: config.MAX_EVENT_LOOP_DELAY_MS,
    retryAfterSeconds: config.RETRY_AFTER_SECONDS,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    headersTimeoutMs: config.HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: config.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeoutMs: config.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    logger,
  });
  const connections = new ConnectionTracker(app.server);

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
      // From here every step ends by one deadline, the drain budget.
      const startedAt = Date.now();
      const deadline = startedAt + config.DRAIN_TIMEOUT_MS;

      // 1. Requests: stop accepting connections, close the ones with nothing in flight, have
      // in-flight requests answered with Connection: close, and wait for their work (which
      // goes on when its client has gone) - not for the drain timeout.
      const closed = app.close();
      connections.closeIdle();
      if (!(await settledBy(Promise.all([closed, work.idle()]), deadline))) {
        logger.warn(
          { drainTimeoutMs: config.DRAIN_TIMEOUT_MS, connections: connections.open, inFlight: work.size },
          'drain budget spent: closing the remaining connections',
        );
        connections.closeAll();
      }
      clearInterval(sweeper);
      clearInterval(metricsTimer);

      // 2. Outbox: the loops stop (a send in progress ends by its timeout or the deadline),
      // then a flush until the deadline; rows left are published by the next instance.
      await relay.stop(deadline);
      const published = await relay.publishPending({ deadline }).catch((err) => {
        logger.warn({ err }, 'final outbox flush failed; rows stay pending');
        return 0;
      });
      emitMetrics();

      // 3. The pool: ends once every connection is back, so bounded too (work still running
      // past the budget holds one); at least a moment to close the idle ones cleanly.
      if (!(await settledBy(pool.end(), Math.max(deadline, Date.now() + 500)))) {
        logger.warn('database pool did not close within the drain budget');
      }
      logger.info({ elapsedMs: Date.now() - startedAt, outboxPublished: published }, 'shutdown complete');
    })();
    return stopping;
  };

  return { app, url, pool, state, metrics, payments, relay, shutdown };
}
