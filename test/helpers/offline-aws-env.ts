/**
 * Jest setup (every test file): the AWS SDK must never look for real credentials or
 * call a real endpoint from a test. Without credentials in the environment its default
 * chain ends at the EC2 instance metadata service (169.254.169.254), which the service
 * tests' outbox relay reached on every run before this file existed. Credentials are
 * overridden, not defaulted: a developer's real keys or profile must not reach a test.
 * Clients that should talk to moto_server get its endpoint from their own test.
 */
export const OFFLINE_AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
} as const;

Object.assign(process.env, OFFLINE_AWS_ENV);
for (const name of ['AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
  delete process.env[name];
}
