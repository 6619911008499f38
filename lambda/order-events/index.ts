/**
 * Lambda entry of the `order-events` worker: builds the clients once per container and
 * hands them to the handler logic in ./handler.ts.
 */
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IDEMPOTENCY_TABLE_ATTRIBUTES } from '../shared/idempotency';
import { httpFulfilment, logFulfilment, parseFulfilmentUrl } from './fulfilment';
import { createOrderEventsHandler, readOrderEventsEnv } from './handler';

const env = readOrderEventsEnv(process.env);
const logger = new Logger();

export const handler = createOrderEventsHandler({
  logger,
  metrics: new Metrics(),
  persistenceStore: new DynamoDBPersistenceLayer({
    tableName: env.tableName,
    ...IDEMPOTENCY_TABLE_ATTRIBUTES,
    awsSdkV3Client: new DynamoDBClient({}),
  }),
  apply: env.fulfilmentUrl
    ? httpFulfilment(parseFulfilmentUrl(env.fulfilmentUrl), env.fulfilmentTimeoutMs)
    : logFulfilment(logger),
  expiresAfterSeconds: env.expiresAfterSeconds,
});
