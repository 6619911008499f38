import { z } from 'zod';
import {
  IAM_ONLY_VARS,
  DatabaseSettings,
  databaseConnectionShape,
  databaseEnvShape,
  resolveDatabaseSettings,
} from './db/settings';
import { count, ms, url } from './env-fields';

export { type DatabaseSettings, SERVICE_DATABASE_USER } from './db/settings';

/**
 * The service's environment. Only the database connection (DATABASE_URL, or
 * DB_IAM_AUTH=true with DB_HOST and AWS_REGION), the dependency URLs, the two queue
 * URLs and ADMIN_TOKEN are required; every tuning knob has a production default.
 */
const envSchema = z.object({
  ...databaseEnvShape,
  PORT: count(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  PAYMENT_URL: url('payment gateway'),
  RECOMMENDATIONS_URL: url('recommendation engine'),
  ORDER_EVENTS_QUEUE_URL: url('order-events SQS queue'),
  PAYMENT_RETRY_QUEUE_URL: url('payment-retry SQS queue'),
  ADMIN_TOKEN: z
    .string({ error: 'must be the bearer token of the admin routes' })
    .min(32, 'must be at least 32 characters (generate one with `openssl rand -hex 32`)'),
  CURRENCY: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as USD')
    .default('USD'),

  /** One payment attempt's timeout (the AbortSignal reaches the HTTP request). */
  PAYMENT_ATTEMPT_TIMEOUT_MS: ms(50, 30_000).default(2_000),
  /** Retries after the first attempt, on transient errors only. */
  PAYMENT_RETRIES: count(0, 5).default(2),
  PAYMENT_BACKOFF_INITIAL_MS: ms(1, 10_000).default(100),
  PAYMENT_BACKOFF_MAX_MS: ms(1, 30_000).default(1_000),
  /** Consecutive failed attempts that open the breaker (a huge value effectively disables it). */
  PAYMENT_BREAKER_THRESHOLD: count(1, 1_000_000).default(5),
  PAYMENT_BREAKER_HALF_OPEN_AFTER_MS: ms(100, 300_000).default(10_000),
  /** Payment bulkhead: concurrent calls, and how many more may wait. */
  PAYMENT_MAX_CONCURRENT: count(1, 1_000).default(50),
  PAYMENT_MAX_QUEUED: count(0, 10_000).default(100),

  RECOMMENDATIONS_TIMEOUT_MS: ms(10, 5_000).default(300),

  /** Requests in flight on /v1 and /admin above which new ones get 503. */
  MAX_IN_FLIGHT: count(1, 100_000).default(200),
  /** Requests queued for a database connection above which new ones get 503 (default: 4 x DB_POOL_SIZE). */
  MAX_DB_WAITING: count(0, 100_000).optional(),
  /** Event-loop delay (p99 over the last half second) above which new requests get 503. */
  MAX_EVENT_LOOP_DELAY_MS: ms(10, 10_000).default(200),
  /** Seconds sent in Retry-After when shedding. */
  RETRY_AFTER_SECONDS: count(1, 3_600).default(2),
  BODY_LIMIT_BYTES: count(256, 1_048_576).default(16_384),

  /** How long an idempotency key is held by the request working on it. */
  IDEMPOTENCY_LEASE_MS: ms(1_000, 600_000).default(30_000),
  /** How long a duplicate request waits for the first one's answer. */
  IDEMPOTENCY_WAIT_MS: ms(100, 120_000).default(15_000),

  OUTBOX_INTERVAL_MS: ms(10, 60_000).default(200),
  OUTBOX_BATCH_SIZE: count(1, 10).default(10),
  /** Orders stuck in PAYMENT_IN_PROGRESS longer than this are deferred to payment-retry. */
  STUCK_ORDER_AFTER_MS: ms(1_000, 3_600_000).default(120_000),

  /** Time between SIGTERM and closing the listener, so the load balancer sees readiness fail. */
  SHUTDOWN_DELAY_MS: ms(0, 300_000).default(0),
  /** Upper bound on waiting for in-flight requests after the listener closes. */
  DRAIN_TIMEOUT_MS: ms(100, 300_000).default(25_000),
  METRICS_INTERVAL_MS: ms(100, 300_000).default(10_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

const connectionSchema = z.object(databaseConnectionShape);
const databaseSchema = z.object(databaseEnvShape);
const RAW_DATABASE_VARS = ['DATABASE_URL', 'DB_IAM_AUTH', ...IAM_ONLY_VARS] as const;
type RawDatabaseVar = (typeof RAW_DATABASE_VARS)[number];

/** The raw connection variables are replaced by the resolved `database` settings. */
type Resolved<T> = Omit<T, RawDatabaseVar> & { readonly database: DatabaseSettings };

/** What a database client needs: connection settings and pool limits (the migrate CLI uses only this). */
export type DatabaseConfig = Resolved<z.infer<typeof databaseSchema>>;

/** The validated service configuration. */
export type ServiceConfig = Resolved<z.infer<typeof envSchema>>;

/** Thrown when the environment is invalid; lists every bad variable. */
export class ServiceConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid service environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ServiceConfigError';
  }
}

type Input = Record<string, string | undefined>;

/** One line per bad variable, skipping variables already reported. */
function schemaProblems(error: z.ZodError, input: Input, reported: readonly string[] = []): string[] {
  const seen = new Set(reported.map((p) => p.split(':')[0]));
  const problems: string[] = [];
  for (const issue of error.issues) {
    const name = issue.path.join('.');
    if (seen.has(name)) continue;
    seen.add(name);
    problems.push(
      input[name] === undefined ? `${name}: is required (${issue.message})` : `${name}: ${issue.message}`,
    );
  }
  return problems;
}

function resolve<T extends Record<string, unknown>>(data: T, database: DatabaseSettings): Resolved<T> {
  const rest: Record<string, unknown> = { ...data };
  for (const name of RAW_DATABASE_VARS) delete rest[name];
  return { ...(rest as Omit<T, RawDatabaseVar>), database };
}

/** The connection mode's problems are reported even when a pool limit is bad, and vice versa. */
function parseDatabase(input: Input): { config?: DatabaseConfig; problems: string[] } {
  const connection = connectionSchema.safeParse(input);
  const database = connection.success
    ? resolveDatabaseSettings(input, connection.data)
    : schemaProblems(connection.error, input);
  const problems = Array.isArray(database) ? [...database] : [];
  const result = databaseSchema.safeParse(input);
  if (!result.success) problems.push(...schemaProblems(result.error, input, problems));
  if (!result.success || Array.isArray(database)) return { problems };
  return { config: resolve(result.data, database), problems };
}

const nonEmpty = (env: NodeJS.ProcessEnv): Input =>
  Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ''));

/**
 * Reads and validates only the database connection settings and pool limits, for tools
 * that need a connection and nothing else (`npm run db:migrate`).
 */
export function loadDatabaseConfig(env: NodeJS.ProcessEnv = process.env): DatabaseConfig {
  const { config, problems } = parseDatabase(nonEmpty(env));
  if (!config) throw new ServiceConfigError(problems);
  return config;
}

/** Reads and validates the configuration from an environment (process.env by default). */
export function loadServiceConfig(env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const input = nonEmpty(env);
  const database = parseDatabase(input);
  const result = envSchema.safeParse(input);
  const problems = [
    ...database.problems,
    ...(result.success ? [] : schemaProblems(result.error, input, database.problems)),
  ];
  if (!result.success || !database.config) throw new ServiceConfigError(problems);
  const config = resolve(result.data, database.config.database);
  if (config.PAYMENT_BACKOFF_MAX_MS < config.PAYMENT_BACKOFF_INITIAL_MS) {
    throw new ServiceConfigError([
      `PAYMENT_BACKOFF_MAX_MS: must be at least PAYMENT_BACKOFF_INITIAL_MS (${config.PAYMENT_BACKOFF_INITIAL_MS})`,
    ]);
  }
  return config;
}

/**
 * The Node.js flags the service runs with, wherever it runs (`npm run service`, the
 * fleet's systemd unit, the benchmark, the lifecycle tests).
 *
 * `--max-old-space-size=128` caps V8's old generation. Without a cap V8 lets it grow
 * toward its default limit (about 4 GiB on a 24 GiB machine) before collecting hard, so RSS under load
 * climbed to 250-260 MB while the live set stays a few tens of MB; with the cap it held
 * at about 160 MB at the same throughput (bench/checkout.ts, see the README). The
 * service keeps no unbounded in-memory state (idempotency lives in PostgreSQL), so a
 * heap limit hit means a leak, and a crash that systemd restarts is the right outcome.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-old-space-size=128'];
