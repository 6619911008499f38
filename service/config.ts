import { availableParallelism } from 'node:os';
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
  /**
   * The gateway's API key itself, sent as `Authorization: Bearer <key>`: for local runs.
   * In AWS use PAYMENT_API_KEY_SECRET_ID, which picks up a rotated key without a restart.
   */
  PAYMENT_API_KEY: z.string().min(1).optional(),
  /**
   * ARN or name of the Secrets Manager secret whose SecretString is the gateway's API key:
   * read at start, again every PAYMENT_API_KEY_REFRESH_MS, and at once when the gateway
   * refuses the key (401/403) (service/payment-api-key.ts).
   */
  PAYMENT_API_KEY_SECRET_ID: z
    .string()
    .regex(/^[A-Za-z0-9/_+=.@:-]{1,2048}$/, 'must be the ARN or name of a Secrets Manager secret')
    .optional(),
  /** How old the key read from PAYMENT_API_KEY_SECRET_ID may get before it is read again. */
  PAYMENT_API_KEY_REFRESH_MS: ms(10_000, 86_400_000).default(300_000),

  RECOMMENDATIONS_TIMEOUT_MS: ms(10, 5_000).default(300),

  /** Requests in flight on /v1 and /admin above which new ones get 503. */
  MAX_IN_FLIGHT: count(1, 100_000).default(200),
  /** Requests queued for a database connection above which new ones get 503 (default: 4 x DB_POOL_SIZE). */
  MAX_DB_WAITING: count(0, 100_000).optional(),
  /**
   * Median statement time (over 100 ms) above which fewer statements run at once: the
   * database gate's concurrency limit (2 to DB_POOL_SIZE) drops until statements are this
   * fast again (service/db/gate.ts). Several times an unloaded statement (2-5 ms).
   */
  MAX_DB_LATENCY_MS: ms(1, 60_000).default(20),
  /**
   * How long a new checkout may wait for its turn at the database gate; one that would
   * wait longer gets 503 + Retry-After at once, nothing written (service/db/gate.ts).
   * Under 3x the peak rate on the bench box, 25 ms held accepted checkouts to a p99 of
   * about 175 ms, 100 ms to about 310 ms ("Benchmark" in docs/checkout-service.md).
   */
  MAX_DB_QUEUE_MS: ms(1, 60_000).default(25),
  /** Event-loop delay (p99 over the last half second) above which new requests get 503. */
  MAX_EVENT_LOOP_DELAY_MS: ms(10, 10_000).default(200),
  /** Seconds sent in Retry-After when shedding. */
  RETRY_AFTER_SECONDS: count(1, 3_600).default(2),
  BODY_LIMIT_BYTES: count(256, 1_048_576).default(16_384),
  /** Time a client has to send its request headers (node's headersTimeout); then 408 and the connection closes. */
  HTTP_HEADERS_TIMEOUT_MS: ms(100, 120_000).default(5_000),
  /** Time a client has to send its whole request, headers and body (node's requestTimeout); then 408. */
  HTTP_REQUEST_TIMEOUT_MS: ms(100, 300_000).default(10_000),
  /** An idle kept-alive connection is closed after this: above the ALB's 60 s idle timeout, so the ALB closes first. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: ms(1_000, 600_000).default(72_000),

  /** How long an idempotency key is held by the request working on it. */
  IDEMPOTENCY_LEASE_MS: ms(1_000, 600_000).default(30_000),
  /** How long a duplicate request waits for the first one's answer. */
  IDEMPOTENCY_WAIT_MS: ms(100, 120_000).default(15_000),

  OUTBOX_INTERVAL_MS: ms(10, 60_000).default(200),
  OUTBOX_BATCH_SIZE: count(1, 10).default(10),
  /** Longest pause of a destination whose sends keep failing (the pause doubles from OUTBOX_INTERVAL_MS). */
  OUTBOX_MAX_BACKOFF_MS: ms(100, 600_000).default(30_000),
  /** Bound on one SQS send, the SDK's retry included (each HTTP attempt gets half, connecting at most 1 s). */
  SQS_TIMEOUT_MS: ms(100, 60_000).default(3_000),
  /** Orders stuck in PAYMENT_IN_PROGRESS longer than this are deferred to payment-retry. */
  STUCK_ORDER_AFTER_MS: ms(1_000, 3_600_000).default(120_000),

  /** Time between SIGTERM and closing the listener, so the load balancer sees readiness fail. */
  SHUTDOWN_DELAY_MS: ms(0, 300_000).default(0),
  /**
   * The drain budget: bound on everything shutdown does once the listener closes (in-flight
   * requests, the outbox flush, closing the pool). Outbox rows left are published by the next instance.
   */
  DRAIN_TIMEOUT_MS: ms(100, 300_000).default(25_000),
  /** Worker processes (node:cluster); 1 runs the service in the main process (default: one per vCPU). */
  SERVICE_PROCESSES: count(1, 256).default(() => availableParallelism()),
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
  if (database.mode === 'iam' && result.data.DB_NAMED_STATEMENTS) {
    return {
      problems: [
        'DB_NAMED_STATEMENTS: must be false with DB_IAM_AUTH=true: the service reaches RDS Proxy that way, and the proxy pins every session that prepares a named statement; set it only for a direct connection (DATABASE_URL)',
      ],
    };
  }
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

/** Cross-field rules of the HTTP and outbox timeouts. */
function httpAndOutboxTimeoutProblems(config: ServiceConfig): string[] {
  const problems: string[] = [];
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    problems.push(
      `HTTP_HEADERS_TIMEOUT_MS: must be at most HTTP_REQUEST_TIMEOUT_MS (${config.HTTP_REQUEST_TIMEOUT_MS}): the headers are part of the request`,
    );
  }
  // The relay holds its rows' locks in a transaction while it sends; PostgreSQL ends a
  // session idle in a transaction for 2 x DB_STATEMENT_TIMEOUT_MS (service/db/pool.ts).
  if (config.SQS_TIMEOUT_MS >= config.DB_STATEMENT_TIMEOUT_MS * 2) {
    problems.push(
      `SQS_TIMEOUT_MS: must be less than 2 x DB_STATEMENT_TIMEOUT_MS (${config.DB_STATEMENT_TIMEOUT_MS * 2}): ` +
        'the outbox relay holds a transaction open while it sends',
    );
  }
  return problems;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

/**
 * The API key rules. Exactly one of PAYMENT_API_KEY and PAYMENT_API_KEY_SECRET_ID, except
 * for a gateway on a loopback address, which can only be the bundled fake (the fleet's
 * sandbox, `npm run service:local`, tests) and may take none; and a key never goes over
 * plain http to another host.
 */
function paymentApiKeyProblems(config: ServiceConfig): string[] {
  const url = new URL(config.PAYMENT_URL);
  const fake = LOOPBACK_HOSTS.has(url.hostname);
  const hasKey = config.PAYMENT_API_KEY !== undefined;
  const hasSecret = config.PAYMENT_API_KEY_SECRET_ID !== undefined;
  if (hasKey && hasSecret) {
    return [
      'PAYMENT_API_KEY_SECRET_ID: cannot be combined with PAYMENT_API_KEY (two sources of one key); ' +
        'unset PAYMENT_API_KEY to read the key from Secrets Manager (a rotated key is then picked up without a restart), ' +
        'or unset PAYMENT_API_KEY_SECRET_ID to give the key itself (local runs)',
    ];
  }
  if (!hasKey && !hasSecret && !fake) {
    return [
      `PAYMENT_API_KEY_SECRET_ID: is required for the payment gateway at ${url.origin} (the ARN or name of the ` +
        'Secrets Manager secret holding its API key); or PAYMENT_API_KEY with the key itself for a local run. ' +
        'Only a gateway on a loopback address (the bundled fake: sandbox, local runs) takes no key',
    ];
  }
  if ((hasKey || hasSecret) && url.protocol !== 'https:' && !fake) {
    return [
      `PAYMENT_URL: must be an https:// URL when an API key is sent (it would travel in clear to ${url.host})`,
    ];
  }
  return [];
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
  const keyProblems = paymentApiKeyProblems(config);
  if (keyProblems.length > 0) throw new ServiceConfigError(keyProblems);
  const timeoutProblems = httpAndOutboxTimeoutProblems(config);
  if (timeoutProblems.length > 0) throw new ServiceConfigError(timeoutProblems);
  const leaseProblem = idempotencyLeaseProblem(config);
  if (leaseProblem) throw new ServiceConfigError([leaseProblem]);
  return config;
}

/**
 * The longest one checkout can take from claiming its idempotency key to recording its
 * outcome: the claim statement (DB_STATEMENT_TIMEOUT_MS), then every payment attempt
 * timing out with the longest backoff between them, or the recommendations timeout if
 * that is longer. A lease shorter than this lets a retry take over an order whose first
 * request is still paying; the fenced final statement keeps that safe, but the work is
 * done twice and the first request's reply waits on the second's.
 *
 * Not counted: time queued in the payment bulkhead (PAYMENT_MAX_QUEUED callers wait for a
 * free slot), which the fence covers.
 */
export function checkoutWorstCaseMs(
  config: Pick<
    ServiceConfig,
    | 'DB_STATEMENT_TIMEOUT_MS'
    | 'PAYMENT_ATTEMPT_TIMEOUT_MS'
    | 'PAYMENT_RETRIES'
    | 'PAYMENT_BACKOFF_MAX_MS'
    | 'RECOMMENDATIONS_TIMEOUT_MS'
  >,
): number {
  const payment =
    (config.PAYMENT_RETRIES + 1) * config.PAYMENT_ATTEMPT_TIMEOUT_MS +
    config.PAYMENT_RETRIES * config.PAYMENT_BACKOFF_MAX_MS;
  return config.DB_STATEMENT_TIMEOUT_MS + Math.max(payment, config.RECOMMENDATIONS_TIMEOUT_MS);
}

function idempotencyLeaseProblem(config: ServiceConfig): string | undefined {
  const worstCaseMs = checkoutWorstCaseMs(config);
  if (config.IDEMPOTENCY_LEASE_MS >= worstCaseMs) return undefined;
  return (
    `IDEMPOTENCY_LEASE_MS: is ${config.IDEMPOTENCY_LEASE_MS} but a checkout may hold its key for ${worstCaseMs} ms ` +
    `(DB_STATEMENT_TIMEOUT_MS ${config.DB_STATEMENT_TIMEOUT_MS} + (PAYMENT_RETRIES ${config.PAYMENT_RETRIES} + 1) x ` +
    `PAYMENT_ATTEMPT_TIMEOUT_MS ${config.PAYMENT_ATTEMPT_TIMEOUT_MS} + PAYMENT_RETRIES x PAYMENT_BACKOFF_MAX_MS ` +
    `${config.PAYMENT_BACKOFF_MAX_MS}); raise IDEMPOTENCY_LEASE_MS to at least ${worstCaseMs} or lower ` +
    'PAYMENT_ATTEMPT_TIMEOUT_MS or PAYMENT_RETRIES'
  );
}

/**
 * The Node.js flags the service runs with, wherever it runs (`npm run service`, the
 * fleet's systemd unit, the benchmark, the lifecycle tests).
 *
 * `--max-old-space-size=128` caps V8's old generation. Without a cap V8 lets it grow
 * toward its default limit (about 4 GiB on a 24 GiB machine) before collecting hard, so RSS under load
 * climbed to 250-260 MB while the live set stays a few tens of MB; with the cap it held
 * at about 160 MB at the same throughput (bench/checkout.ts, see docs/checkout-service.md). The
 * service keeps no unbounded in-memory state (idempotency lives in PostgreSQL), so a
 * heap limit hit means a leak, and a crash that systemd restarts is the right outcome.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-old-space-size=128'];
