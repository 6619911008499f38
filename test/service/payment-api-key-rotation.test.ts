import {
  CreateSecretCommand,
  DeleteSecretCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { ServiceConfigError, loadServiceConfig } from '../../service/config';
import { MotoServer, motoAvailable } from '../helpers/moto-server';
import { TestDatabase, createTestDatabase, describeWithPostgres } from './helpers/database';
import {
  Harness,
  checkout,
  checkoutBody,
  newKey,
  serviceEnv,
  setStock,
  startHarness,
} from './helpers/harness';

const withMoto = motoAvailable(
  'the payment API key tests read a rotated key from Secrets Manager on a local AWS emulator',
);

/**
 * The whole service against the fake gateway requiring an API key, with the key in a
 * Secrets Manager secret (moto_server): a rotation reaches the running service.
 */
(withMoto ? describeWithPostgres : describe.skip)('the payment API key from Secrets Manager', () => {
  const SECRET = 'resilient-shop/payment-gateway-api-key';
  let db: TestDatabase;
  let moto: MotoServer;
  let secrets: SecretsManagerClient;
  let h: Harness | undefined;
  const saved = process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;

  beforeAll(async () => {
    db = await createTestDatabase();
    moto = await MotoServer.start();
    secrets = new SecretsManagerClient(moto.clientConfig);
    // Only the service's Secrets Manager client goes to moto (the SDK's per-service endpoint variable).
    process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = moto.endpoint;
  }, 60_000);
  afterAll(async () => {
    if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER;
    else process.env.AWS_ENDPOINT_URL_SECRETS_MANAGER = saved;
    secrets?.destroy();
    await moto?.stop();
    await db?.drop();
  });
  afterEach(async () => {
    await h?.stop();
    h = undefined;
    await secrets
      .send(new DeleteSecretCommand({ SecretId: SECRET, ForceDeleteWithoutRecovery: true }))
      .catch(() => undefined);
  });

  async function start(gatewayKey: string, overrides: Record<string, string> = {}) {
    h = await startHarness(db, { PAYMENT_API_KEY_SECRET_ID: SECRET, ...overrides });
    h.payment.apiKey = gatewayKey;
    await setStock(h.service.url, 'SKU-1', 1_000);
    return h;
  }

  test('the key read from the secret is sent on every charge', async () => {
    await secrets.send(new CreateSecretCommand({ Name: SECRET, SecretString: 'sk_live_1' }));
    const service = await start('sk_live_1');
    const reply = await checkout(service.service.url, newKey('keyed'), checkoutBody());
    expect(reply.status).toBe(201);
    expect(reply.body.status).toBe('CONFIRMED');
    expect(service.payment.lastAuthorization).toBe('Bearer sk_live_1');
  });

  test('a rotation recovers after one 401, without a restart', async () => {
    // GIVEN a running service whose charges go through with key 1
    await secrets.send(new CreateSecretCommand({ Name: SECRET, SecretString: 'sk_live_1' }));
    const service = await start('sk_live_1');
    expect((await checkout(service.service.url, newKey('before'), checkoutBody())).status).toBe(201);
    // WHEN the key is rotated: the secret and the gateway both move to key 2
    await secrets.send(new PutSecretValueCommand({ SecretId: SECRET, SecretString: 'sk_live_2' }));
    service.payment.apiKey = 'sk_live_2';
    // THEN the next checkout is confirmed by the same process, after one refused call
    const reply = await checkout(service.service.url, newKey('after'), checkoutBody());
    expect(reply.status).toBe(201);
    expect(reply.body.status).toBe('CONFIRMED');
    expect(service.payment.unauthorizedRequests).toBe(1);
    expect(service.payment.lastAuthorization).toBe('Bearer sk_live_2');
    expect(service.service.payments.breakerState).toBe('closed');
    // AND the calls after it go out with key 2 straight away
    expect((await checkout(service.service.url, newKey('later'), checkoutBody())).status).toBe(201);
    expect(service.payment.unauthorizedRequests).toBe(1);
  });

  test('a gateway key the secret does not hold is refused: 503 PAYMENT_GATEWAY_REJECTED, nothing charged', async () => {
    await secrets.send(new CreateSecretCommand({ Name: SECRET, SecretString: 'sk_live_1' }));
    const service = await start('sk_live_revoked_elsewhere');
    const reply = await checkout(service.service.url, newKey('refused'), checkoutBody());
    expect(reply.status).toBe(503);
    expect(reply.body.error).toBe('PAYMENT_GATEWAY_REJECTED');
    expect(service.payment.charges.size).toBe(0);
  });

  test('a secret that cannot be read stops the start, naming it', async () => {
    // GIVEN no such secret
    await expect(startHarness(db, { PAYMENT_API_KEY_SECRET_ID: SECRET })).rejects.toThrow(
      /could not read the payment gateway API key from Secrets Manager \(resilient-shop\/payment-gateway-api-key\)/,
    );
  });
});

describe('the payment API key settings', () => {
  const base = (overrides: Record<string, string>) =>
    serviceEnv(
      { url: 'postgres://u@127.0.0.1:5432/shop' } as TestDatabase,
      'http://127.0.0.1:4001',
      'http://127.0.0.1:4002',
      overrides,
    );

  test('a real gateway without a key is refused, naming the variable', () => {
    expect(() => loadServiceConfig(base({ PAYMENT_URL: 'https://api.payments.example.com' }))).toThrow(
      ServiceConfigError,
    );
    expect(() => loadServiceConfig(base({ PAYMENT_URL: 'https://api.payments.example.com' }))).toThrow(
      /PAYMENT_API_KEY_SECRET_ID: is required for the payment gateway at https:\/\/api\.payments\.example\.com/,
    );
  });

  test('both the key and its secret are refused', () => {
    expect(() =>
      loadServiceConfig(base({ PAYMENT_API_KEY: 'sk_local', PAYMENT_API_KEY_SECRET_ID: 'gateway-key' })),
    ).toThrow(/PAYMENT_API_KEY_SECRET_ID: cannot be combined with PAYMENT_API_KEY/);
  });

  test('a key is never sent in clear to another host', () => {
    expect(() =>
      loadServiceConfig(
        base({ PAYMENT_URL: 'http://gateway.internal:8080', PAYMENT_API_KEY_SECRET_ID: 'k' }),
      ),
    ).toThrow(/PAYMENT_URL: must be an https:\/\/ URL when an API key is sent/);
  });

  test('either source alone is accepted; the bundled fake on a loopback address takes none', () => {
    const real = { PAYMENT_URL: 'https://api.payments.example.com' };
    expect(
      loadServiceConfig(
        base({
          ...real,
          PAYMENT_API_KEY_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:gw-AbCdEf',
        }),
      ),
    ).toMatchObject({
      PAYMENT_API_KEY_SECRET_ID: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:gw-AbCdEf',
      PAYMENT_API_KEY_REFRESH_MS: 300_000,
    });
    expect(loadServiceConfig(base({ ...real, PAYMENT_API_KEY: 'sk_local' })).PAYMENT_API_KEY).toBe(
      'sk_local',
    );
    expect(loadServiceConfig(base({})).PAYMENT_API_KEY).toBeUndefined();
  });
});
