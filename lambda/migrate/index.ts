/**
 * Lambda entry of the schema migration job: builds the Secrets Manager client once per
 * container and hands it to the job's logic in ./job.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { createMigrationJobHandler, readMigrationJobEnv } from './job';

const env = readMigrationJobEnv(process.env);
// Bounded: the SDK's own retry included, one read never takes more than about 10 s (the
// job reads the secret again before each of its tries).
const secrets = new SecretsManagerClient({
  maxAttempts: 3,
  requestHandler: { connectionTimeout: 2_000, requestTimeout: 3_000 },
});

export const handler = createMigrationJobHandler({
  env,
  logger: new Logger(),
  fetchSecret: async (secretId) =>
    (await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString,
});
