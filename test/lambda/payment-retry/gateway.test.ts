import {
  CreateSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { parsePaymentUrl, sandboxGateway, secretKeyGateway } from '../../../lambda/payment-retry/gateway';
import { FakePaymentGateway } from '../../../service/fakes/payment-gateway';
import { FakeLogger } from '../../helpers/lambda';
import { MotoServer, motoAvailable } from '../../helpers/moto-server';
import { FAST_POLICY } from './helpers';

const ORDER = { amountCents: 100, currency: 'USD', paymentToken: 'tok_visa' };
const orderId = (n: number) => `f3b5c6c2-8b1c-4a57-9f0e-0d8f1e2a3b${String(n).padStart(2, '0')}`;

describe('parsePaymentUrl', () => {
  test.each(['https://api.payments.example.com', 'http://127.0.0.1:4001', 'http://localhost:8080/v1'])(
    'accepts %s',
    (url) => expect(parsePaymentUrl(url)).toBe(url),
  );
  test.each([
    ['http://api.payments.example.com', /must be an https:\/\/ URL/],
    ['api.payments.example.com', /is not a URL/],
  ])('refuses %s', (url, message) => {
    expect(() => parsePaymentUrl(url)).toThrow(message);
  });
});

describe('the sandbox gateway (SANDBOX ONLY)', () => {
  test("runs the service's fake in the container, behind the service's client: approves, and declines tok_decline", async () => {
    const gateways = sandboxGateway(FAST_POLICY);
    try {
      const gateway = await gateways.current();
      expect(await gateways.current()).toBe(gateway);
      const charged = await gateway.charge({ ...ORDER, orderId: orderId(1) });
      expect(charged.kind).toBe('charged');
      // the same order again: the same charge (the fake honours the idempotency key)
      expect(await gateway.charge({ ...ORDER, orderId: orderId(1) })).toEqual(charged);
      expect(await gateway.charge({ ...ORDER, orderId: orderId(2), paymentToken: 'tok_decline' })).toEqual({
        kind: 'declined',
        reason: 'card_declined',
      });
    } finally {
      await gateways.close();
    }
  });
});

const hasMoto = motoAvailable('the API key tests read the key from Secrets Manager on moto_server');

(hasMoto ? describe : describe.skip)('the real gateway, its API key in Secrets Manager (moto_server)', () => {
  let moto: MotoServer;
  let secrets: SecretsManagerClient;
  let fake: FakePaymentGateway;
  let url: string;

  beforeAll(async () => {
    moto = await MotoServer.start();
    secrets = new SecretsManagerClient(moto.clientConfig);
    fake = new FakePaymentGateway({ apiKey: 'sk_live_1' });
    url = await fake.listen();
  }, 60_000);
  afterAll(async () => {
    await fake?.close();
    secrets?.destroy();
    await moto?.stop();
  });

  /** Reads the secret as the worker does (GetSecretValue, SecretString), counting reads. */
  function reader() {
    let reads = 0;
    return {
      reads: () => reads,
      read: async (secretId: string) => {
        reads++;
        return (await secrets.send(new GetSecretValueCommand({ SecretId: secretId }))).SecretString;
      },
    };
  }

  test('sends the key read from the secret, read once for many charges, and follows a rotation the gateway enforces', async () => {
    // GIVEN the gateway's key in a secret, and a gateway that requires it
    const { ARN } = await secrets.send(
      new CreateSecretCommand({ Name: 'resilient-shop/payment-gateway-api-key', SecretString: 'sk_live_1' }),
    );
    const { read, reads } = reader();
    const logger = new FakeLogger();
    let clock = 1_000_000;
    const { gateway } = secretKeyGateway({
      url,
      secretId: ARN!,
      read,
      logger,
      policy: FAST_POLICY,
      now: () => clock,
    });
    try {
      // WHEN the worker charges three orders
      for (const n of [1, 2, 3]) {
        expect((await gateway.charge({ ...ORDER, orderId: orderId(10 + n) })).kind).toBe('charged');
      }
      // THEN each carried the key, read from Secrets Manager once
      expect(fake.lastAuthorization).toBe('Bearer sk_live_1');
      expect(reads()).toBe(1);
      expect(fake.unauthorizedRequests).toBe(0);

      // WHEN, a minute later, the key is rotated (a new value in the secret, the old one
      // revoked at the gateway)
      clock += 60_000;
      await secrets.send(new PutSecretValueCommand({ SecretId: ARN, SecretString: 'sk_live_2' }));
      fake.apiKey = 'sk_live_2';
      // THEN the next charge is refused once, the key read again, and the charge goes through with it
      expect((await gateway.charge({ ...ORDER, orderId: orderId(20) })).kind).toBe('charged');
      expect(fake.unauthorizedRequests).toBe(1);
      expect(fake.lastAuthorization).toBe('Bearer sk_live_2');
      expect(reads()).toBe(2);
      expect(logger.at('info').map((e) => e.message)).toEqual([
        'payment gateway API key changed: the new one is in use',
      ]);
      // and the key appears in no log line
      expect(JSON.stringify(logger.entries)).not.toMatch(/sk_live/);
    } finally {
      gateway.close();
    }
  });

  test('a secret that cannot be read fails the charge as not taken (transient), without calling the gateway', async () => {
    const { read } = reader();
    const logger = new FakeLogger();
    const { gateway } = secretKeyGateway({
      url,
      secretId: 'no-such-secret',
      read,
      logger,
      policy: FAST_POLICY,
    });
    const requests = fake.requestCount;
    try {
      const outcome = await gateway.charge({ ...ORDER, orderId: orderId(30) });
      expect(outcome).toEqual({ kind: 'deferred', cause: 'retries-exhausted' });
      expect(fake.requestCount).toBe(requests);
      expect(logger.at('warn')[0].message).toBe('could not read the payment gateway API key');
    } finally {
      gateway.close();
    }
  });
});
