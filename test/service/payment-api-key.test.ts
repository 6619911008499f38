import {
  PaymentApiKeyUnavailableError,
  SecretApiKey,
  SecretApiKeyOptions,
  staticApiKey,
} from '../../service/payment-api-key';

/** A secret in memory, a clock the test moves, and what the source reported. */
function fixture(overrides: Partial<SecretApiKeyOptions> = {}) {
  const secret = { value: 'key-1' as string | undefined, failing: false };
  const clock = { now: 1_000_000 };
  const reads: string[] = [];
  const events: string[] = [];
  let release: (() => void) | undefined;
  const source = new SecretApiKey({
    secretId: 'checkout/payment-api-key',
    refreshIntervalMs: 60_000,
    minRereadIntervalMs: 5_000,
    now: () => clock.now,
    read: async (id) => {
      reads.push(id);
      if (release) await new Promise<void>((resolve) => (release = resolve));
      if (secret.failing) throw new Error('connect ETIMEDOUT');
      return secret.value;
    },
    onRotated: (reason) => events.push(`rotated:${reason}`),
    onReadFailed: (_err, stale) => events.push(`failed:${stale ? 'stale' : 'none'}`),
    ...overrides,
  });
  return {
    source,
    secret,
    clock,
    reads,
    events,
    /** Makes the next reads wait until `go()` is called. */
    hold() {
      release = () => undefined;
      return {
        go: () => {
          const resume = release!;
          release = undefined;
          resume();
        },
      };
    },
  };
}

/** Lets pending promise callbacks (a background read) run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('SecretApiKey', () => {
  test('reads the key once at start and serves it from memory until it is older than the interval', async () => {
    const f = fixture();
    await f.source.start();
    f.clock.now += 59_999;
    expect(await f.source.current()).toBe('key-1');
    expect(f.reads).toEqual(['checkout/payment-api-key']);
  });

  test('past the interval, the held key goes on being sent while it is read again; a rotated key follows', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.value = 'key-2';
    f.clock.now += 60_000;
    // THEN the call past the interval does not wait for Secrets Manager
    expect(await f.source.current()).toBe('key-1');
    await settle();
    // AND the next one has the new key
    expect(await f.source.current()).toBe('key-2');
    expect(f.reads).toHaveLength(2);
    expect(f.events).toEqual(['rotated:interval']);
  });

  test('a failed read keeps the key read before, and is not tried again on every call', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.failing = true;
    f.clock.now += 60_000;
    expect(await f.source.current()).toBe('key-1');
    await settle();
    expect(await f.source.current()).toBe('key-1');
    await settle();
    expect(f.reads).toHaveLength(2);
    expect(f.events).toEqual(['failed:stale']);
    // once minRereadIntervalMs has passed, it is tried again
    f.secret.failing = false;
    f.secret.value = 'key-2';
    f.clock.now += 5_000;
    await f.source.current();
    await settle();
    expect(await f.source.current()).toBe('key-2');
  });

  test('a refusal reads the key at once and gives the rotated one', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.value = 'key-2';
    f.clock.now += 10_000;
    expect(await f.source.refreshAfterRejection('key-1')).toBe('key-2');
    expect(f.events).toEqual(['rotated:rejection']);
  });

  test('a refusal right after start reads the key at once (a rotation may have just happened)', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.value = 'key-2';
    expect(await f.source.refreshAfterRejection('key-1')).toBe('key-2');
  });

  test('a refusal of the key just read stands, and refusals read at most once per minRereadIntervalMs', async () => {
    const f = fixture();
    await f.source.start();
    // the secret still holds the refused key: the read gives nothing new
    expect(await f.source.refreshAfterRejection('key-1')).toBeUndefined();
    // and within minRereadIntervalMs of that read, further refusals do not read again
    f.clock.now += 4_999;
    expect(await f.source.refreshAfterRejection('key-1')).toBeUndefined();
    expect(f.reads).toHaveLength(2);
    // after it, one does (the secret may have been fixed meanwhile)
    f.secret.value = 'key-2';
    f.clock.now += 1;
    expect(await f.source.refreshAfterRejection('key-1')).toBe('key-2');
    expect(f.reads).toHaveLength(3);
  });

  test('concurrent refusals share one read', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.value = 'key-2';
    f.clock.now += 10_000;
    const held = f.hold();
    const refusals = Array.from({ length: 20 }, () => f.source.refreshAfterRejection('key-1'));
    await settle();
    held.go();
    expect(await Promise.all(refusals)).toEqual(Array(20).fill('key-2'));
    expect(f.reads).toHaveLength(2);
  });

  test('a refusal of a key already replaced is answered with the new one, without a read', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.value = 'key-2';
    f.clock.now += 10_000;
    await f.source.refreshAfterRejection('key-1');
    // a call that was sent with key-1 before the read comes back refused
    expect(await f.source.refreshAfterRejection('key-1')).toBe('key-2');
    expect(f.reads).toHaveLength(2);
  });

  test('a refusal while Secrets Manager fails stands (the key held is kept)', async () => {
    const f = fixture();
    await f.source.start();
    f.secret.failing = true;
    f.clock.now += 10_000;
    expect(await f.source.refreshAfterRejection('key-1')).toBeUndefined();
    expect(await f.source.current()).toBe('key-1');
    expect(f.events).toEqual(['failed:stale']);
  });

  test('start fails with the secret named when it cannot be read or is empty', async () => {
    const failing = fixture();
    failing.secret.failing = true;
    await expect(failing.source.start()).rejects.toThrow(PaymentApiKeyUnavailableError);
    await expect(failing.source.start()).rejects.toThrow(
      /could not read the payment gateway API key from Secrets Manager \(checkout\/payment-api-key\): connect ETIMEDOUT/,
    );
    const empty = fixture();
    empty.secret.value = undefined;
    await expect(empty.source.start()).rejects.toThrow(
      /secret checkout\/payment-api-key has no SecretString/,
    );
  });

  test('a static key never changes: a refusal of it stands', async () => {
    const key = staticApiKey('sk_local');
    expect(await key.current()).toBe('sk_local');
    expect(await key.refreshAfterRejection('sk_local')).toBeUndefined();
  });
});
