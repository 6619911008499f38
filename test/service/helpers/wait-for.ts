/**
 * Options for {@link waitFor}.
 */
export interface WaitForOptions {
  /** Give up after this many milliseconds. Default 5000. */
  timeoutMs?: number;
  /** Pause between probes in milliseconds. Default 20. */
  intervalMs?: number;
  /** Text put at the start of the timeout error. */
  message?: string;
}

/**
 * Polls `probe` until it returns (or resolves to) a truthy value and resolves
 * with that value. A probe that throws counts as "not yet"; the last error is
 * reported if the wait times out.
 *
 * @throws Error naming `message`, the timeout and the last value (or error)
 *   seen when no truthy value arrives within `timeoutMs`.
 */
export async function waitFor<T>(
  probe: () => T | Promise<T>,
  options: WaitForOptions = {},
): Promise<NonNullable<T>> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value) {
        return value as NonNullable<T>;
      }
      last = value;
      lastError = undefined;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  const seen =
    lastError === undefined
      ? `last value: ${describe(last)}`
      : `last error: ${lastError instanceof Error ? lastError.message : describe(lastError)}`;
  throw new Error(
    `${options.message ?? 'waitFor timed out'} (after ${timeoutMs} ms; ${seen})`,
    lastError === undefined ? undefined : { cause: lastError },
  );
}

function describe(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}
