/**
 * The payment gateway as the worker reaches it: the service's client
 * (service/payment-client.ts) with the worker's policy, and the API key from Secrets
 * Manager through the service's key source (service/payment-api-key.ts); or, in a sandbox
 * deployment, the service's fake gateway in the same process.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { FakePaymentGateway } from '../../service/fakes/payment-gateway';
import { ReadSecret, SecretApiKey } from '../../service/payment-api-key';
import { HttpPaymentGateway, PaymentGateway } from '../../service/payment-client';
import { WorkerConfigError } from '../shared/env';
import { API_KEY_REFRESH_MS, PAYMENT_RETRY_POLICY, PaymentPolicy } from './contract';

/** Gives the gateway client to use for the next charge. */
export interface GatewaySource {
  current(): Promise<PaymentGateway>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * Validates `PAYMENT_URL`: HTTPS (the workers' security group lets only 443 out, and the
 * API key must not travel in clear), or plain HTTP to a loopback address, which only a
 * test can mean.
 */
export function parsePaymentUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new WorkerConfigError(`PAYMENT_URL "${raw}" is not a URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) {
    throw new WorkerConfigError(`PAYMENT_URL must be an https:// URL, got "${raw}"`);
  }
  return raw;
}

/**
 * The real gateway: one client for the life of the container (its circuit breaker keeps
 * its state across invocations), sending the API key the service's `SecretApiKey` holds.
 * The key is read on the first charge (inside its first attempt: a failed read is a
 * transient attempt failure, retried, and the record fails if it lasts), read again in
 * the background once older than {@link API_KEY_REFRESH_MS}, and at once when the gateway
 * refuses it (401/403): a rotated key is picked up without a redeploy. A Secrets Manager
 * outage does not stop charges with a key already held.
 */
export function secretKeyGateway(options: {
  readonly url: string;
  readonly secretId: string;
  readonly read: ReadSecret;
  readonly logger: Pick<Logger, 'info' | 'warn'>;
  /** @default PAYMENT_RETRY_POLICY */
  readonly policy?: PaymentPolicy;
  /** @default API_KEY_REFRESH_MS */
  readonly refreshIntervalMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}): GatewaySource & { readonly gateway: HttpPaymentGateway } {
  const { secretId, logger } = options;
  const apiKey = new SecretApiKey({
    secretId,
    read: options.read,
    refreshIntervalMs: options.refreshIntervalMs ?? API_KEY_REFRESH_MS,
    now: options.now,
    onRotated: (reason) =>
      logger.info('payment gateway API key changed: the new one is in use', { secretId, reason }),
    onReadFailed: (err, stale) =>
      logger.warn(
        stale
          ? 'could not read the payment gateway API key; the key read before stays in use'
          : 'could not read the payment gateway API key',
        { secretId, stale, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) },
      ),
  });
  const gateway = new HttpPaymentGateway(options.url, {
    ...(options.policy ?? PAYMENT_RETRY_POLICY),
    apiKey,
  });
  return { gateway, current: () => Promise.resolve(gateway) };
}

/**
 * SANDBOX ONLY, NOT FOR PRODUCTION: the service's fake payment gateway
 * (service/fakes/payment-gateway.ts), started on 127.0.0.1 in this container on first
 * use, behind the same client (no API key). It approves every charge whose token is not
 * `tok_decline`, as the sandbox fleet's fake does; its charges live as long as the container.
 */
export function sandboxGateway(
  policy: PaymentPolicy = PAYMENT_RETRY_POLICY,
): GatewaySource & { close(): Promise<void> } {
  const fake = new FakePaymentGateway();
  let started: Promise<HttpPaymentGateway> | undefined;
  return {
    /** Stops the client and the fake (tests; in Lambda they live as long as the container). */
    async close() {
      if (!started) return;
      (await started.catch(() => undefined))?.close();
      await fake.close();
    },
    current() {
      started ??= fake
        .listen()
        .then((url) => new HttpPaymentGateway(url, policy))
        .catch((err: unknown) => {
          started = undefined;
          throw err;
        });
      return started;
    },
  };
}
