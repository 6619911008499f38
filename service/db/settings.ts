import { z } from 'zod';
import { count, ms } from '../env-fields';

/** The database role the service connects as in AWS; migration 0002 creates it. */
export const SERVICE_DATABASE_USER = 'checkout';

/**
 * How the service reaches PostgreSQL: one of two modes, chosen by the environment.
 * Either a connection string (local runs, tests, a password connection), or IAM
 * authentication through RDS Proxy, where each new connection's password is a
 * freshly signed IAM auth token and TLS is verified against the public CA store.
 */
export const databaseConnectionShape = {
  /** Mode "url": a postgres:// connection string (TLS and password as the URL says). */
  DATABASE_URL: z
    .string({ error: 'must be a postgres:// connection string' })
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// connection string')
    .optional(),
  /** Mode "iam": `true` connects to DB_HOST with an IAM auth token instead of a password. */
  DB_IAM_AUTH: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  /** The RDS Proxy endpoint's host name (also the TLS server name that is verified). */
  DB_HOST: z
    .string()
    .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'must be a host name, without scheme or port')
    .optional(),
  /** The proxy's port (RDS Proxy for PostgreSQL always listens on 5432). */
  DB_PORT: count(1, 65535).optional(),
  /** The database (the cluster was created without a default database name: `postgres`). */
  DB_NAME: z.string().min(1).optional(),
  /** The database user the token is signed for (`shop_admin` to run migrations). */
  DB_USER: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'must be a PostgreSQL role name such as checkout')
    .optional(),
  /** The AWS region; in IAM mode the proxy's, required because tokens are signed for it. */
  AWS_REGION: z.string().min(1).default('us-east-1'),
};

/** The pool's limits and how statements are sent, in either mode. */
export const databasePoolShape = {
  /** Database bulkhead: connections this instance may hold. */
  DB_POOL_SIZE: count(2, 200).default(20),
  /** How long a request waits for a pooled connection before it is shed. */
  DB_CONNECT_TIMEOUT_MS: ms(50, 30_000).default(1_000),
  DB_STATEMENT_TIMEOUT_MS: ms(100, 60_000).default(5_000),
  /**
   * `true` prepares each statement once per connection under its name (less work for
   * PostgreSQL per checkout); only for a direct connection: RDS Proxy pins every session
   * that prepares a named statement, so it is refused with DB_IAM_AUTH=true. Default
   * false: unnamed statements, which RDS Proxy multiplexes (see service/db/statement.ts).
   */
  DB_NAMED_STATEMENTS: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
};

/** Every database variable: connection settings and pool limits. */
export const databaseEnvShape = { ...databaseConnectionShape, ...databasePoolShape };

/** IAM mode: through RDS Proxy, with an IAM auth token as each connection's password. */
export interface IamDatabaseSettings {
  readonly mode: 'iam';
  /** RDS Proxy endpoint; also the TLS server name. */
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly user: string;
  /** Region the auth token is signed for: the proxy's. */
  readonly region: string;
}

/** Where and how to connect: the resolved database mode. */
export type DatabaseSettings = { readonly mode: 'url'; readonly url: string } | IamDatabaseSettings;

/** Variables that only apply in IAM mode. */
export const IAM_ONLY_VARS = ['DB_HOST', 'DB_PORT', 'DB_NAME', 'DB_USER'] as const;

/**
 * Cross-field rules of the two connection modes: exactly one of DATABASE_URL and
 * DB_IAM_AUTH=true, and what IAM mode needs.
 *
 * @param input - the raw environment (to tell a given AWS_REGION from its default)
 * @param parsed - the same environment through {@link databaseConnectionShape}
 * @returns the settings, or one problem line per bad variable
 */
export function resolveDatabaseSettings(
  input: Record<string, unknown>,
  parsed: z.infer<z.ZodObject<typeof databaseConnectionShape>>,
): DatabaseSettings | string[] {
  const iam = parsed.DB_IAM_AUTH === 'true';
  const iamOnly = IAM_ONLY_VARS.filter((name) => parsed[name] !== undefined);
  if (parsed.DATABASE_URL !== undefined) {
    if (!iam && iamOnly.length === 0) return { mode: 'url', url: parsed.DATABASE_URL };
    const others = [...(iam ? ['DB_IAM_AUTH=true'] : []), ...iamOnly].join(', ');
    return [
      `DATABASE_URL: cannot be combined with ${others} (two connection modes); unset DATABASE_URL to connect through RDS Proxy with IAM auth, or unset ${others} to use the URL`,
    ];
  }
  if (!iam) {
    if (iamOnly.length > 0) {
      return [
        `DB_IAM_AUTH: must be true when ${iamOnly.join(', ')} ${iamOnly.length > 1 ? 'are' : 'is'} set (IAM auth through RDS Proxy is the only mode that uses them); or set DATABASE_URL instead`,
      ];
    }
    return [
      'DATABASE_URL: is required (a postgres:// connection string), unless the service connects through RDS Proxy with IAM auth: DB_IAM_AUTH=true, DB_HOST and AWS_REGION',
    ];
  }
  const problems: string[] = [];
  if (parsed.DB_HOST === undefined) {
    problems.push('DB_HOST: is required with DB_IAM_AUTH=true (the RDS Proxy endpoint host name)');
  }
  if (input.AWS_REGION === undefined) {
    problems.push(
      'AWS_REGION: is required with DB_IAM_AUTH=true (the RDS Proxy region; tokens are signed for it)',
    );
  }
  const hostRegion = /\.([a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com$/.exec(parsed.DB_HOST ?? '')?.[1];
  if (hostRegion && input.AWS_REGION !== undefined && hostRegion !== parsed.AWS_REGION) {
    problems.push(
      `AWS_REGION: is ${parsed.AWS_REGION} but DB_HOST is in ${hostRegion}; set AWS_REGION=${hostRegion} (tokens signed for another region are refused)`,
    );
  }
  if (problems.length > 0 || parsed.DB_HOST === undefined) return problems;
  return {
    mode: 'iam',
    host: parsed.DB_HOST,
    port: parsed.DB_PORT ?? 5432,
    database: parsed.DB_NAME ?? 'postgres',
    user: parsed.DB_USER ?? SERVICE_DATABASE_USER,
    region: parsed.AWS_REGION,
  };
}
