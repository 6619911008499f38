import { WorkerError } from './errors';

/** A worker's environment is wrong: the function fails at init, naming the variable and the fix. */
export class WorkerConfigError extends WorkerError {}

type Env = Readonly<Record<string, string | undefined>>;

/** A required, non-empty variable. */
export function requiredEnv(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new WorkerConfigError(`${name} is required but not set`);
  return value;
}

/** A whole number of at least `min`, or `fallback` when unset. */
export function integerEnv(env: Env, name: string, fallback: number | undefined, min = 1): number {
  const raw = env[name]?.trim();
  if (!raw) {
    if (fallback === undefined) throw new WorkerConfigError(`${name} is required but not set`);
    return fallback;
  }
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new WorkerConfigError(`${name} must be a whole number of at least ${min}, got "${raw}"`);
  }
  return value;
}
