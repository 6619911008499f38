import type { Signer } from '@aws-sdk/rds-signer';
import { PoolConfig } from 'pg';
import { DatabaseSettings, IamDatabaseSettings } from './settings';

/** Signs IAM database auth tokens; `Signer` from @aws-sdk/rds-signer is one. */
export interface AuthTokenSigner {
  /** A token valid for 15 minutes, used as the password of one new connection. */
  getAuthToken(): Promise<string>;
}

/** What the connection builder may be given instead of building it itself. */
export interface ConnectionDependencies {
  /**
   * Signs the IAM auth tokens in IAM mode.
   *
   * @default a `Signer` for the configured host, port, user and region, with
   * credentials from the SDK's default chain (the instance role on the fleet)
   */
  readonly signer?: AuthTokenSigner;
}

/** Signing an IAM auth token failed (usually: no AWS credentials); keeps the SDK error as `cause`. */
export class DatabaseAuthTokenError extends Error {
  constructor(settings: IamDatabaseSettings, cause: unknown) {
    super(
      `could not sign an IAM auth token for ${settings.user}@${settings.host}:${settings.port} ` +
        `in ${settings.region}: ${(cause as Error)?.message ?? String(cause)}`,
      { cause },
    );
    this.name = 'DatabaseAuthTokenError';
  }
}

/**
 * The signer of IAM auth tokens for one proxy endpoint and user. Signing is local
 * (SigV4 over the credentials of the default chain): no network call per token.
 *
 * The SDK is required here rather than imported at the top: a caller that brings its own
 * signer (`ConnectionDependencies.signer`: the Lambda workers, see
 * lambda/shared/rds-auth-token.ts) never loads it, and its bundle can leave it out.
 */
export function createAuthTokenSigner(settings: IamDatabaseSettings): AuthTokenSigner {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when no signer is given (see above)
  const { Signer: SdkSigner } = require('@aws-sdk/rds-signer') as { Signer: typeof Signer };
  return new SdkSigner({
    hostname: settings.host,
    port: settings.port,
    username: settings.user,
    region: settings.region,
  });
}

/**
 * Turns the database settings into the connection part of a pg `PoolConfig`.
 *
 * In IAM mode the password is a function: pg calls it for every new connection (never
 * per query), so each connection authenticates with a fresh token and no token is held
 * past its 15 minutes. TLS is required and verified against Node's CA store (RDS Proxy
 * certificates chain to Amazon's public root CAs), with the proxy host as server name.
 */
export function connectionConfig(settings: DatabaseSettings, deps: ConnectionDependencies = {}): PoolConfig {
  if (settings.mode === 'url') return { connectionString: settings.url };
  const signer = deps.signer ?? createAuthTokenSigner(settings);
  return {
    host: settings.host,
    port: settings.port,
    database: settings.database,
    user: settings.user,
    password: async () => {
      try {
        return await signer.getAuthToken();
      } catch (err) {
        throw new DatabaseAuthTokenError(settings, err);
      }
    },
    ssl: { rejectUnauthorized: true, servername: settings.host },
  };
}
