import { SQSClient } from '@aws-sdk/client-sqs';

describe('the offline AWS environment every test runs in', () => {
  test('an SDK client built as the service builds it resolves the fake credentials, not instance metadata', async () => {
    // GIVEN a client with no explicit credentials, like the service's outbox relay
    const client = new SQSClient({ region: 'us-east-1' });
    // WHEN it resolves credentials THEN the environment's fake ones end the chain
    await expect(client.config.credentials()).resolves.toMatchObject({
      accessKeyId: 'testing',
      secretAccessKey: 'testing',
    });
    expect(process.env.AWS_EC2_METADATA_DISABLED).toBe('true');
  });
});
