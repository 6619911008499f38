import { Signer } from '@aws-sdk/rds-signer';
import { rdsAuthTokenSigner, signRdsAuthToken } from '../../../lambda/shared/rds-auth-token';

const TARGET = {
  hostname: 'shop-proxy.proxy-c0ffee123456.us-east-1.rds.amazonaws.com',
  port: 5432,
  username: 'checkout',
  region: 'us-east-1',
};
const CREDENTIALS = {
  accessKeyId: 'ASIAEXAMPLEKEYID1234',
  // Characters that need encoding, in the secret and in the session token.
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'IQoJb3JpZ2luX2VjE/+token=with!special*chars',
};

describe('IAM database auth tokens signed with node:crypto', () => {
  afterEach(() => jest.useRealTimers());

  test.each([
    ['with a session token (a Lambda role)', CREDENTIALS],
    ['without one (long-term keys)', { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }],
  ])('equal byte for byte to the AWS SDK Signer for the same inputs, %s', async (_case, credentials) => {
    // GIVEN a fixed clock (both signers read it)
    const date = new Date('2026-03-01T09:08:07.654Z');
    jest.useFakeTimers({ now: date });
    // WHEN the SDK and this module each sign a token
    const sdk = await new Signer({ ...TARGET, credentials }).getAuthToken();
    const ours = signRdsAuthToken(TARGET, credentials, date);
    // THEN they are the same string
    expect(ours).toBe(sdk);
    expect(ours).toMatch(
      /^shop-proxy\.proxy-c0ffee123456\.us-east-1\.rds\.amazonaws\.com:5432\/\?Action=connect&DBUser=checkout&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=/,
    );
    expect(ours).toContain('X-Amz-Date=20260301T090807Z&X-Amz-Expires=900');
  });

  test('another user, port or region signs another token', () => {
    const date = new Date('2026-03-01T09:08:07Z');
    const base = signRdsAuthToken(TARGET, CREDENTIALS, date);
    expect(signRdsAuthToken({ ...TARGET, username: 'shop_admin' }, CREDENTIALS, date)).not.toBe(base);
    expect(signRdsAuthToken({ ...TARGET, port: 5433 }, CREDENTIALS, date)).not.toBe(base);
    expect(signRdsAuthToken({ ...TARGET, region: 'us-west-2' }, CREDENTIALS, date)).not.toBe(base);
  });

  test('the pool signer asks for credentials for every token (a refreshed role session is used)', async () => {
    // GIVEN a credentials provider that rotates its session token
    let calls = 0;
    const signer = rdsAuthTokenSigner({
      ...TARGET,
      credentials: async () => ({ ...CREDENTIALS, sessionToken: `session-${++calls}` }),
      now: () => new Date('2026-03-01T09:08:07Z'),
    });
    // WHEN two connections are opened
    const first = await signer.getAuthToken();
    const second = await signer.getAuthToken();
    // THEN each token carries the session of its time
    expect(first).toContain('X-Amz-Security-Token=session-1');
    expect(second).toContain('X-Amz-Security-Token=session-2');
  });
});
