/**
 * Lambda entry of the inventory reconciler: reads its configuration and builds the logger,
 * the metrics and the connection settings once per container, and hands them to the
 * reconciler in ./reconciler.ts.
 *
 * The database settings are the fleet's variables (`DB_IAM_AUTH`, `DB_HOST`, `DB_PORT`,
 * `DB_USER`, `AWS_REGION`, or `DATABASE_URL`: ./database.ts), turned into a connection by
 * the service's own code (service/db/connection.ts): an IAM auth token per connection,
 * TLS verified against the host name. The token is signed by lambda/shared/rds-auth-token.ts
 * (not the SDK's `Signer`, whose credential providers would be most of the bundle) with
 * the execution role's credentials, which Lambda puts in the environment.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Client } from 'pg';
import { connectionConfig } from '../../service/db/connection';
import { requiredEnv } from '../shared/env';
import { rdsAuthTokenSigner } from '../shared/rds-auth-token';
import { RECONCILER_DATABASE, RECONCILER_SERVICE, RELEASE_BATCH_SIZE } from './contract';
import { readDatabaseSettings } from './database';
import { createReconciler, readReconcilerEnv } from './reconciler';

const env = readReconcilerEnv(process.env);
const database = readDatabaseSettings(process.env);
const connection = connectionConfig(
  database,
  database.mode === 'iam'
    ? {
        signer: rdsAuthTokenSigner({
          hostname: database.host,
          port: database.port,
          username: database.user,
          region: database.region,
          // Read per token: the values Lambda set for this execution environment.
          credentials: async () => ({
            accessKeyId: requiredEnv(process.env, 'AWS_ACCESS_KEY_ID'),
            secretAccessKey: requiredEnv(process.env, 'AWS_SECRET_ACCESS_KEY'),
            sessionToken: process.env.AWS_SESSION_TOKEN,
          }),
        }),
      }
    : {},
);
const { DB_CONNECT_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS } = RECONCILER_DATABASE;

export const handler = createReconciler({
  connect: async () => {
    const client = new Client({
      ...connection,
      application_name: RECONCILER_SERVICE,
      connectionTimeoutMillis: DB_CONNECT_TIMEOUT_MS,
      statement_timeout: DB_STATEMENT_TIMEOUT_MS,
      query_timeout: DB_STATEMENT_TIMEOUT_MS + 1_000,
    });
    // A connection dropped between statements fails the next statement; without a
    // listener the 'error' event would crash the runtime first.
    client.on('error', () => undefined);
    await client.connect();
    return { db: client, close: () => client.end() };
  },
  logger: new Logger(),
  metrics: new Metrics(),
  holdMs: env.holdMs,
  batchSize: RELEASE_BATCH_SIZE,
});
