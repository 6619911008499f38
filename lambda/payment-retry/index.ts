/**
 * Lambda entry of the `payment-retry` worker: builds the clients once per container (the
 * database pool with IAM auth, the gateway client with its breaker and API key, the
 * idempotency store) and hands them to the handler logic in ./handler.ts.
 */
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createPool } from '../../service/db/pool';
import { API_KEY_READ_TIMEOUT_MS, secretsManagerReader } from '../../service/payment-api-key';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../shared/idempotency';
import { recordScopedLogger } from '../shared/record-log';
import { rdsAuthTokenSigner } from '../shared/rds-auth-token';
import { PAYMENT_RETRY_DATABASE, PAYMENT_RETRY_SERVICE, idleInTransactionTimeoutMs } from './contract';
import { GatewaySource, sandboxGateway, secretKeyGateway } from './gateway';
import { createPaymentRetryHandler, readPaymentRetryEnv } from './handler';
import { retryDeferredPayment } from './settle';

const env = readPaymentRetryEnv(process.env);
// Scoped: the gateway's API-key lines written while a record is handled carry its keys.
const logger = recordScopedLogger(new Logger());
const metrics = new Metrics();
const dynamo = new DynamoDBClient({});

// The service's pool: an IAM auth token per new connection, signed with the role's
// credentials as the SDK clients resolve them (lambda/shared/rds-auth-token.ts), TLS
// verified (RDS Proxy's public CA in the primary; the cluster's RDS CA in the standby,
// trusted through NODE_EXTRA_CA_CERTS), unnamed statements that RDS Proxy multiplexes.
const pool = createPool(
  {
    database: env.database,
    AWS_REGION: env.database.region,
    ...PAYMENT_RETRY_DATABASE,
    DB_NAMED_STATEMENTS: false,
  },
  {
    signer: rdsAuthTokenSigner({
      hostname: env.database.host,
      port: env.database.port,
      username: env.database.user,
      region: env.database.region,
      credentials: () => dynamo.config.credentials(),
    }),
  },
  { applicationName: PAYMENT_RETRY_SERVICE, idleInTransactionTimeoutMs: idleInTransactionTimeoutMs() },
);

const gateways: GatewaySource =
  env.payment.mode === 'sandbox'
    ? sandboxGateway()
    : secretKeyGateway({
        url: env.payment.url,
        secretId: env.payment.apiKeySecretId,
        read: secretsManagerReader({ region: env.database.region, timeoutMs: API_KEY_READ_TIMEOUT_MS }),
        logger,
      });

export const handler = createPaymentRetryHandler({
  logger,
  metrics,
  persistenceStore: new DynamoDBPersistenceLayer({
    tableName: env.tableName,
    ...IDEMPOTENCY_TABLE_ATTRIBUTES,
    awsSdkV3Client: dynamo,
  }),
  expiresAfterSeconds: env.expiresAfterSeconds,
  retry: async (orderId) =>
    retryDeferredPayment(
      {
        pool,
        gateway: await gateways.current(),
        onConflictRetry: () => metrics.addMetric('DatabaseConflictRetries', MetricUnit.Count, 1),
      },
      orderId,
    ),
});
