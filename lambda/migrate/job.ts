/**
 * The schema migration job (lib/constructs/migration-job.ts): applies the checkout
 * service's migrations (service/db/migrations.ts, through the service's own pool) as the
 * schema owner, with the master user's password read from Secrets Manager, over TLS
 * verified against the RDS certificate authorities, straight to the cluster's writer.
 *
 * A CloudFormation trigger invokes it on every deploy whose function changed (a new
 * migration changes the bundle), before the fleet's Auto Scaling group is updated. It
 * returns what it applied; it throws when anything fails, which fails the deploy with the
 * error's message in the stack's events.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { DatabaseError, Pool } from 'pg';
import type { DatabaseConfig } from '../../service/config';
import { MIGRATIONS, MigrationsNotAppliedError, migrate } from '../../service/db/migrations';
import { createPool } from '../../service/db/pool';
import { WorkerConfigError, integerEnv, requiredEnv } from '../shared/env';
import { WorkerError } from '../shared/errors';

/** `application_name` of the job's sessions: who they are in `pg_stat_activity` and the PostgreSQL logs. */
export const MIGRATION_APPLICATION_NAME = 'migration-job';

/** How the job protects its connection. */
export type MigrationTls =
  /** TLS required, server certificate verified (chain and host name): the only mode in AWS. */
  | 'verify-full'
  /** No TLS: only for a local PostgreSQL in tests; `readMigrationJobEnv` never yields it. */
  | 'disable';

/** Where the migrations go. */
export interface MigrationTarget {
  /** The cluster's writer endpoint (also the TLS server name that is verified). */
  readonly host: string;
  readonly port: number;
  /** The service's database (`postgres`: the cluster was created without a database name). */
  readonly database: string;
  readonly tls: MigrationTls;
}

/** The environment `index.ts` reads (set by lib/constructs/migration-job.ts). */
export interface MigrationJobEnv {
  readonly target: MigrationTarget;
  /** ARN of the master secret (JSON with `username` and `password`, as RDS writes it). */
  readonly secretId: string;
  /** The schema owner; a secret for any other user is refused. */
  readonly expectedUser: string;
  /** `statement_timeout` of every statement of a migration. */
  readonly statementTimeoutMs: number;
  /**
   * `lock_timeout`: how long a migration waits for a table lock before it gives up (and is
   * tried again). An `ALTER TABLE` waiting for its lock makes every checkout that touches
   * the table queue behind it; this bounds that stall.
   */
  readonly lockTimeoutMs: number;
}

/**
 * Reads the job's environment: `DB_HOST`, `DB_PORT`, `DB_NAME` (default `postgres`),
 * `DB_USER`, `DB_SECRET_ID`, `DB_STATEMENT_TIMEOUT_MS` and `DB_LOCK_TIMEOUT_MS`. TLS is
 * always `verify-full`: there is no variable to turn it off.
 *
 * @throws WorkerConfigError naming the variable: the function fails at init
 */
export function readMigrationJobEnv(env: Readonly<Record<string, string | undefined>>): MigrationJobEnv {
  const port = integerEnv(env, 'DB_PORT', undefined);
  if (port > 65_535) throw new WorkerConfigError(`DB_PORT must be a TCP port (1-65535), got ${port}`);
  return {
    target: {
      host: requiredEnv(env, 'DB_HOST'),
      port,
      database: env.DB_NAME?.trim() || 'postgres',
      tls: 'verify-full',
    },
    secretId: requiredEnv(env, 'DB_SECRET_ID'),
    expectedUser: requiredEnv(env, 'DB_USER'),
    statementTimeoutMs: integerEnv(env, 'DB_STATEMENT_TIMEOUT_MS', undefined, 100),
    lockTimeoutMs: integerEnv(env, 'DB_LOCK_TIMEOUT_MS', undefined, 100),
  };
}

/** The schema owner's credentials, from the master secret. */
export interface MasterCredentials {
  readonly username: string;
  readonly password: string;
}

/** The master secret is missing, unreadable, or for another user. */
export class MasterSecretError extends WorkerError {}

/**
 * Reads `username` and `password` from the master secret's JSON (the form RDS and CDK's
 * generated secret use), and refuses a secret for any user but the schema owner.
 */
export function parseMasterSecret(secretString: string | undefined, expectedUser: string): MasterCredentials {
  if (!secretString) throw new MasterSecretError('the master secret has no SecretString');
  let parsed: unknown;
  try {
    parsed = JSON.parse(secretString);
  } catch (err) {
    // Never the text itself: it holds the password.
    throw new MasterSecretError('the master secret is not JSON', { cause: (err as Error).name });
  }
  const { username, password } = (parsed ?? {}) as { username?: unknown; password?: unknown };
  if (typeof username !== 'string' || username === '' || typeof password !== 'string' || password === '') {
    throw new MasterSecretError('the master secret has no string "username" and "password"');
  }
  if (username !== expectedUser) {
    throw new MasterSecretError(
      `the master secret is for "${username}", but migrations run as the schema owner "${expectedUser}" (DB_USER)`,
    );
  }
  return { username, password };
}

/**
 * The connection string of the service's URL mode (service/db/settings.ts) for the job:
 * the password URL-encoded; `sslmode=verify-full` (TLS required, the chain verified against
 * Node's CA store, which `NODE_EXTRA_CA_CERTS` extends with the RDS certificate
 * authorities, and the host name checked); `lock_timeout` as a startup parameter (pg sends
 * it in the startup packet, as the pool's `statement_timeout`), so that it holds for every
 * statement of the session without a `SET`.
 */
export function migrationDatabaseUrl(
  target: MigrationTarget,
  credentials: MasterCredentials,
  lockTimeoutMs: number,
): string {
  const url = new URL('postgres://placeholder');
  url.hostname = target.host;
  url.port = String(target.port);
  url.pathname = `/${encodeURIComponent(target.database)}`;
  url.username = encodeURIComponent(credentials.username);
  url.password = encodeURIComponent(credentials.password);
  url.searchParams.set('sslmode', target.tls);
  url.searchParams.set('lock_timeout', String(lockTimeoutMs));
  return url.toString();
}

/** A migration failed: nothing of it was kept (each migration runs in its own transaction). */
export class MigrationFailedError extends WorkerError {
  constructor(
    /** The migration that failed, when the error says which. */
    readonly migration: string | undefined,
    /** PostgreSQL's SQLSTATE, when the database raised the error. */
    readonly code: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The job could not connect or log in (after its tries), or the connection failed mid-run. */
export class MigrationConnectionError extends WorkerError {}

/** The innermost PostgreSQL error of a chain (umzug wraps it in its MigrationError). */
function databaseErrorOf(err: unknown): DatabaseError | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    if (e instanceof DatabaseError) return e;
  }
  return undefined;
}

/** The migration umzug names in its MigrationError (`{ migration: { name } }`). */
function failedMigrationOf(err: unknown): string | undefined {
  for (let e = err; e instanceof Error; e = e.cause) {
    const name = (e as { migration?: { name?: unknown } }).migration?.name;
    if (typeof name === 'string') return name;
  }
  return undefined;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

/**
 * SQLSTATEs worth another try, with the secret read again:
 * - 28P01 (invalid_password) and 28000 (invalid_authorization_specification): the master
 *   secret rotates every 30 days, and a single-user rotation changes the password in the
 *   database (`setSecret`) before it makes the new value current (`finishSecret`), so a
 *   read in between gets a password that no longer works (Secrets Manager User Guide,
 *   "Rotation strategy: single user": clients retry with the secret read again);
 * - 57P03 (cannot_connect_now): the instance is starting up;
 * - 55P03 (lock_not_available): `lock_timeout` gave up on a table lock; the migration was
 *   rolled back whole, and a later try usually finds the lock free.
 */
const RETRYABLE_SQLSTATES = new Set(['28P01', '28000', '57P03', '55P03']);

/**
 * Whether a failure may pass on a later attempt: one of {@link RETRYABLE_SQLSTATES}, a
 * network error (the writer endpoint's DNS or the instance not answering yet, just after
 * creation or a failover), or pg's connection timeout.
 */
export function isRetryableMigrationFailure(err: unknown): boolean {
  const code = databaseErrorOf(err)?.code;
  if (code !== undefined) return RETRYABLE_SQLSTATES.has(code);
  for (let e = err; e instanceof Error; e = e.cause) {
    if (NETWORK_CODES.has((e as NodeJS.ErrnoException).code ?? '')) return true;
    if (/timeout expired|Connection terminated/i.test(e.message)) return true;
  }
  return false;
}

/** What a run did. */
export interface MigrationResult {
  /** The migrations this run applied, in order (empty: nothing was pending). */
  readonly applied: string[];
  /** Every migration the bundle knows (the schema the fleet about to start expects). */
  readonly known: string[];
  readonly database: string;
  readonly user: string;
  /** How many tries it took. */
  readonly attempts: number;
}

/** What the job needs from the outside; `index.ts` builds the real ones once per container. */
export interface MigrationJobDeps {
  readonly env: MigrationJobEnv;
  /** Secrets Manager `GetSecretValue`'s `SecretString` (or a fake in tests). */
  readonly fetchSecret: (secretId: string) => Promise<string | undefined>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error' | 'addContext'>;
  /**
   * Tries in all, each with the secret read again.
   *
   * @default 5
   */
  readonly attempts?: number;
  /**
   * Wait before try n+1 (n from 1).
   *
   * @default 2 s doubling per try, at most 15 s: about 30 s for 5 tries
   */
  readonly backoffMs?: (attempt: number) => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

const defaultBackoff = (attempt: number) => Math.min(15_000, 2_000 * 2 ** (attempt - 1));

/** The final error of a failed run: names the migration and PostgreSQL's own message. */
function failure(err: unknown, attempts: number, target: MigrationTarget): WorkerError {
  if (err instanceof WorkerError) return err;
  const dbError = databaseErrorOf(err);
  if (err instanceof MigrationsNotAppliedError) {
    // The secret's user lacks the privileges: its message already says what to do.
    return new MigrationFailedError(undefined, dbError?.code, err.message, { cause: err });
  }
  const migration = failedMigrationOf(err);
  const detail = dbError
    ? `${dbError.message} (SQLSTATE ${dbError.code}${dbError.detail ? `; ${dbError.detail}` : ''})`
    : (err as Error)?.message || String(err);
  if (migration) {
    return new MigrationFailedError(
      migration,
      dbError?.code,
      `migration ${migration} failed, rolled back (nothing of it was kept): ${detail}`,
      { cause: err },
    );
  }
  const tries = `${attempts} ${attempts === 1 ? 'try' : 'tries'}`;
  if (dbError && !isRetryableMigrationFailure(err)) {
    return new MigrationFailedError(undefined, dbError.code, `migrations failed: ${detail}`, { cause: err });
  }
  return new MigrationConnectionError(
    `could not migrate ${target.database} at ${target.host}:${target.port} (${tries}): ${detail}`,
    { cause: err },
  );
}

/** One try: a pool with the credentials just read, who we are, then the service's migrate(). */
async function attemptOnce(deps: MigrationJobDeps): Promise<Omit<MigrationResult, 'attempts'>> {
  const { env } = deps;
  const credentials = parseMasterSecret(await deps.fetchSecret(env.secretId), env.expectedUser);
  const config: DatabaseConfig = {
    database: { mode: 'url', url: migrationDatabaseUrl(env.target, credentials, env.lockTimeoutMs) },
    // One connection for migrate(), one for the identity check before it.
    DB_POOL_SIZE: 2,
    DB_CONNECT_TIMEOUT_MS: 10_000,
    DB_STATEMENT_TIMEOUT_MS: env.statementTimeoutMs,
    DB_NAMED_STATEMENTS: false,
    AWS_REGION: process.env.AWS_REGION ?? 'us-east-1',
  };
  const pool: Pool = createPool(config, {}, { applicationName: MIGRATION_APPLICATION_NAME });
  try {
    const { rows } = await pool.query<{ user: string; database: string }>(
      'SELECT current_user AS user, current_database() AS database',
    );
    const applied = await migrate(pool);
    return { applied, known: MIGRATIONS.map((m) => m.name), ...rows[0] };
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/**
 * Applies every pending migration, trying again (secret read afresh) on what
 * {@link isRetryableMigrationFailure} allows, and nothing else: a migration's own error
 * (bad SQL, a constraint existing rows break) fails at once, its transaction rolled back.
 *
 * @throws MigrationFailedError naming the migration and PostgreSQL's message and SQLSTATE;
 * MigrationConnectionError after the last try; MasterSecretError for an unusable secret
 */
export async function runMigrations(deps: MigrationJobDeps): Promise<MigrationResult> {
  const attempts = deps.attempts ?? 5;
  const backoff = deps.backoffMs ?? defaultBackoff;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const { target } = deps.env;
  for (let attempt = 1; ; attempt++) {
    try {
      const result = await attemptOnce(deps);
      return { ...result, attempts: attempt };
    } catch (err) {
      if (attempt >= attempts || !isRetryableMigrationFailure(err)) throw failure(err, attempt, target);
      const waitMs = backoff(attempt);
      deps.logger.warn('migration try failed; trying again with the secret read afresh', {
        attempt,
        waitMs,
        host: target.host,
        code: databaseErrorOf(err)?.code ?? (err as NodeJS.ErrnoException).code,
        error: (err as Error).message,
      });
      await sleep(waitMs);
    }
  }
}

/**
 * The Lambda handler: runs the migrations and logs the outcome. The event (the trigger's
 * invocation carries none that matters) is ignored.
 */
export function createMigrationJobHandler(
  deps: MigrationJobDeps,
): (event?: unknown, context?: Context) => Promise<MigrationResult> {
  return async (_event, context) => {
    if (context) deps.logger.addContext(context);
    const { target } = deps.env;
    try {
      const result = await runMigrations(deps);
      deps.logger.info(result.applied.length > 0 ? 'migrations applied' : 'no pending migrations', {
        ...result,
        host: target.host,
      });
      return result;
    } catch (err) {
      deps.logger.error('migrations failed; the deploy fails and the fleet is not updated', {
        host: target.host,
        error: err as Error,
      });
      throw err;
    }
  };
}
