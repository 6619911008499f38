/**
 * `npm run service:local`: the service with its fakes in one command, on a machine with
 * Node alone. Uses DATABASE_URL when set; otherwise an embedded PostgreSQL (PGlite)
 * served over the wire protocol, in memory.
 *
 *   payment gateway   http://127.0.0.1:4001  PUT /__control {"mode":"hang"} injects a fault
 *   recommendations   http://127.0.0.1:4002  same controls
 *   SQS               http://127.0.0.1:4003  GET /__messages lists what the outbox published
 *   embedded database 127.0.0.1:54329
 *
 * Ports: PORT, LOCAL_PAYMENT_PORT, LOCAL_RECOMMENDATIONS_PORT, LOCAL_SQS_PORT, LOCAL_DB_PORT.
 */
import pino from 'pino';
import { loadServiceConfig } from './config';
import { FakePaymentGateway } from './fakes/payment-gateway';
import { FakeRecommendations } from './fakes/recommendations';
import { FakeSqs } from './fakes/sqs';
import { startService } from './server';

const LOCAL_ADMIN_TOKEN = 'local-admin-token-not-for-production-0000';

async function embeddedPostgres(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const db = await PGlite.create();
  const port = Number(process.env.LOCAL_DB_PORT ?? 54329);
  // The pool opens several connections; PGlite serializes them over one backend.
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port, maxConnections: 100 });
  await server.start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      await server.stop();
      await db.close();
    },
  };
}

async function main(): Promise<void> {
  const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const database = process.env.DATABASE_URL
    ? { url: process.env.DATABASE_URL, stop: async () => undefined }
    : await embeddedPostgres();
  const payment = new FakePaymentGateway();
  const recommendations = new FakeRecommendations();
  const sqs = new FakeSqs((m) =>
    logger.info({ queueUrl: m.queueUrl, body: JSON.parse(m.body) }, 'fake SQS received'),
  );
  const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
  const paymentUrl = await payment.listen(port('LOCAL_PAYMENT_PORT', 4001));
  const recommendationsUrl = await recommendations.listen(port('LOCAL_RECOMMENDATIONS_PORT', 4002));
  const sqsUrl = await sqs.listen(port('LOCAL_SQS_PORT', 4003));

  const config = loadServiceConfig({
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    ...process.env,
    AWS_ENDPOINT_URL: sqsUrl,
    DATABASE_URL: database.url,
    PAYMENT_URL: paymentUrl,
    RECOMMENDATIONS_URL: recommendationsUrl,
    ORDER_EVENTS_QUEUE_URL: `${sqsUrl}/000000000000/order-events`,
    PAYMENT_RETRY_QUEUE_URL: `${sqsUrl}/000000000000/payment-retry`,
    ADMIN_TOKEN: process.env.ADMIN_TOKEN ?? LOCAL_ADMIN_TOKEN,
    HOST: process.env.HOST ?? '127.0.0.1',
  });
  // The SDK reads the endpoint and credentials from the environment.
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: sqsUrl,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
  });
  const service = await startService(config, logger);
  logger.info(
    {
      url: service.url,
      database: database.url,
      payment: paymentUrl,
      recommendations: recommendationsUrl,
      sqs: sqsUrl,
      adminToken: config.ADMIN_TOKEN,
    },
    'local checkout service ready',
  );

  const stop = async (signal: string) => {
    await service.shutdown(signal);
    await Promise.all([payment.close(), recommendations.close(), sqs.close()]);
    await database.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`service:local failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
