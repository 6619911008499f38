import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { ServiceConfig } from './config';
import { TransientPaymentError } from './errors';

/**
 * Where the payment client gets the gateway's API key (sent as `Authorization: Bearer
 * <key>` on every call), and what it does when the gateway refuses one.
 */
export interface PaymentApiKeySource {
  /** The key to send now. */
  current(): Promise<string>;
  /**
   * The gateway refused `rejected` (401 or 403): reads the key again, at most once per
   * refusal wave, and resolves to the key to try next, or to undefined when there is no
   * other one (the refusal stands: a misconfiguration).
   */
  refreshAfterRejection(rejected: string): Promise<string | undefined>;
}

/** A key given as it is (`PAYMENT_API_KEY`, local runs): a refusal always stands. */
export function staticApiKey(key: string): PaymentApiKeySource {
  return {
    current: () => Promise.resolve(key),
    refreshAfterRejection: () => Promise.resolve(undefined),
  };
}

/**
 * The key could not be read and no earlier copy is held: the charge is not sent. Transient
 * (another attempt may find Secrets Manager answering), so it is retried, counts toward
 * the breaker, and the order is deferred to payment-retry when it lasts.
 */
export class PaymentApiKeyUnavailableError extends TransientPaymentError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, undefined, options);
  }
}

/** Reads the secret's `SecretString` (Secrets Manager `GetSecretValue`, or a fake). */
export type ReadSecret = (secretId: string) => Promise<string | undefined>;

/** What {@link SecretApiKey} reports, for the logs (never the key). */
export interface SecretApiKeyEvents {
  /** A read returned another key than the one held (a rotation reached this process). */
  onRotated?(reason: 'interval' | 'rejection'): void;
  /** A read failed; `stale` when an earlier copy stays in use. */
  onReadFailed?(err: unknown, stale: boolean): void;
}

/** Options of {@link SecretApiKey}. */
export interface SecretApiKeyOptions extends SecretApiKeyEvents {
  /** The secret's ARN or name (`PAYMENT_API_KEY_SECRET_ID`). */
  readonly secretId: string;
  readonly read: ReadSecret;
  /** A copy older than this is read again (`PAYMENT_API_KEY_REFRESH_MS`). */
  readonly refreshIntervalMs: number;
  /**
   * Refusals read the key at most once per this long (and a failed background read is
   * tried again after it): a wrong key makes every call fail at once, and each must not
   * read the secret again.
   *
   * @default 5_000
   */
  readonly minRereadIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * The gateway's API key from Secrets Manager, held in memory, so that a rotated key
 * reaches the service without a restart:
 *
 * - {@link start} reads it once (the service does not start without it);
 * - a copy older than `refreshIntervalMs` is read again in the background while the held
 *   one goes on being sent (no charge waits for Secrets Manager), and a failed read keeps
 *   the held copy (a Secrets Manager outage does not stop charges with a key that works);
 * - a 401 or 403 from the gateway reads it at once ({@link refreshAfterRejection}): the
 *   call is sent once more with the new key, and stands as a rejection only when the key
 *   read is the one refused. Concurrent refusals share one read, and refusals read it
 *   at most once per `minRereadIntervalMs` (a wrong key does not make every call read).
 */
export class SecretApiKey implements PaymentApiKeySource {
  private held?: { key: string; readAt: number };
  private reading?: Promise<string>;
  /** When the last read started (a failed background read waits minRereadMs from it). */
  private lastAttemptAt = -Infinity;
  /** When a refusal last made it read (refusals read once per minRereadMs). */
  private lastRejectionReadAt = -Infinity;
  private readonly now: () => number;
  private readonly minRereadMs: number;

  constructor(private readonly options: SecretApiKeyOptions) {
    this.now = options.now ?? Date.now;
    this.minRereadMs = options.minRereadIntervalMs ?? 5_000;
  }

  /**
   * Reads the key for the first time.
   *
   * @throws PaymentApiKeyUnavailableError when it cannot be read or is empty
   */
  async start(): Promise<void> {
    await this.read('interval');
  }

  current(): Promise<string> {
    const held = this.held;
    if (!held) return this.read('interval');
    const now = this.now();
    // A failed background read is not tried again on every call, only once per minRereadMs.
    if (now - held.readAt >= this.options.refreshIntervalMs && now - this.lastAttemptAt >= this.minRereadMs) {
      this.read('interval').catch(() => undefined);
    }
    return Promise.resolve(held.key);
  }

  async refreshAfterRejection(rejected: string): Promise<string | undefined> {
    if (this.held && this.held.key !== rejected) return this.held.key;
    if (this.reading) return this.settled(this.reading, rejected);
    const now = this.now();
    if (now - this.lastRejectionReadAt < this.minRereadMs) return undefined;
    this.lastRejectionReadAt = now;
    return this.settled(this.read('rejection'), rejected);
  }

  /** The key a read gave, unless it is the refused one (or the read failed). */
  private async settled(reading: Promise<string>, rejected: string): Promise<string | undefined> {
    try {
      const key = await reading;
      return key === rejected ? undefined : key;
    } catch {
      return undefined;
    }
  }

  /** One read at a time; every caller meanwhile waits for the same one. */
  private read(reason: 'interval' | 'rejection'): Promise<string> {
    this.reading ??= this.readOnce(reason).finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readOnce(reason: 'interval' | 'rejection'): Promise<string> {
    this.lastAttemptAt = this.now();
    let key: string | undefined;
    try {
      key = await this.options.read(this.options.secretId);
    } catch (err) {
      this.options.onReadFailed?.(err, this.held !== undefined);
      throw new PaymentApiKeyUnavailableError(
        `could not read the payment gateway API key from Secrets Manager (${this.options.secretId}): ${(err as Error)?.message ?? String(err)}`,
        { cause: err },
      );
    }
    if (!key) {
      const err = new PaymentApiKeyUnavailableError(
        `the payment gateway API key secret ${this.options.secretId} has no SecretString`,
      );
      this.options.onReadFailed?.(err, this.held !== undefined);
      throw err;
    }
    const rotated = this.held !== undefined && this.held.key !== key;
    this.held = { key, readAt: this.now() };
    if (rotated) this.options.onRotated?.(reason);
    return key;
  }
}

/**
 * `GetSecretValue` with bounds: connecting at most 1 s, each HTTP attempt at most half of
 * `timeoutMs`, one retry; the AbortSignal bounds the whole call. The endpoint and
 * credentials come from the SDK's default chain (`AWS_ENDPOINT_URL` points it at a local
 * emulator).
 */
export function secretsManagerReader(options: { region: string; timeoutMs: number }): ReadSecret {
  const client = new SecretsManagerClient({
    region: options.region,
    maxAttempts: 2,
    requestHandler: {
      connectionTimeout: Math.min(1_000, options.timeoutMs),
      requestTimeout: Math.ceil(options.timeoutMs / 2),
      throwOnRequestTimeout: true,
    },
  });
  return async (secretId) => {
    const { SecretString } = await client.send(new GetSecretValueCommand({ SecretId: secretId }), {
      abortSignal: AbortSignal.timeout(options.timeoutMs),
    });
    return SecretString;
  };
}

/** Bound on one read of the key (the SDK's retry included). */
export const API_KEY_READ_TIMEOUT_MS = 3_000;

/** What the service logs about its key (pino's logger has it). */
export interface ApiKeyLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

/**
 * The service's key source from its configuration: the secret (read once here, so that a
 * wrong secret id or a missing permission stops the start with a clear error), the key
 * itself, or none (the bundled fake on a loopback address).
 *
 * @param read - reads the secret; Secrets Manager with the SDK's default chain unless given
 * @throws PaymentApiKeyUnavailableError when the secret cannot be read at start
 */
export async function startPaymentApiKey(
  config: Pick<
    ServiceConfig,
    'PAYMENT_API_KEY' | 'PAYMENT_API_KEY_SECRET_ID' | 'PAYMENT_API_KEY_REFRESH_MS' | 'AWS_REGION'
  >,
  logger: ApiKeyLogger,
  read?: ReadSecret,
): Promise<PaymentApiKeySource | undefined> {
  if (config.PAYMENT_API_KEY !== undefined) return staticApiKey(config.PAYMENT_API_KEY);
  const secretId = config.PAYMENT_API_KEY_SECRET_ID;
  if (secretId === undefined) return undefined;
  const source = new SecretApiKey({
    secretId,
    read: read ?? secretsManagerReader({ region: config.AWS_REGION, timeoutMs: API_KEY_READ_TIMEOUT_MS }),
    refreshIntervalMs: config.PAYMENT_API_KEY_REFRESH_MS,
    onRotated: (reason) =>
      logger.info({ secretId, reason }, 'payment gateway API key changed: the new one is in use'),
    onReadFailed: (err, stale) =>
      logger.warn(
        { secretId, err, stale },
        stale
          ? 'could not read the payment gateway API key; the key read before stays in use'
          : 'could not read the payment gateway API key',
      ),
  });
  await source.start();
  return source;
}
