/**
 * IAM database auth tokens for the Lambda workers, signed with node:crypto alone.
 *
 * Why not `Signer` from @aws-sdk/rds-signer, which the checkout service uses: it requires
 * @aws-sdk/credential-providers when its module loads, and bundled that is about 210 KB of
 * credential providers and nested STS/SSO clients a Lambda function never calls (its
 * credentials are its role's, which its SDK clients already resolve). Left to the runtime
 * instead, it would depend on @aws-sdk/rds-signer and a @smithy/core new enough for the
 * subpaths it imports being installed there, which the Lambda documentation does not
 * promise. The token is SigV4 query signing of one request, specified by AWS ("Create a
 * signed AWS API request", IAM User Guide); test/lambda/shared/rds-auth-token.test.ts
 * holds it byte for byte equal to the SDK's `Signer` for the same inputs.
 *
 * The workers hand it to the service's pool as `ConnectionDependencies.signer`
 * (service/db/connection.ts), which then never loads the SDK's `Signer`.
 */
import { createHash, createHmac } from 'node:crypto';
import type { AuthTokenSigner } from '../../service/db/connection';

/** AWS credentials: what an SDK client's `config.credentials()` resolves to. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Where and as whom a token lets its bearer connect. */
export interface RdsAuthTokenOptions {
  /** The RDS Proxy endpoint (or the cluster endpoint where no proxy runs). */
  readonly hostname: string;
  readonly port: number;
  /** The database user (a member of `rds_iam`). */
  readonly username: string;
  /** The region of the proxy or cluster. */
  readonly region: string;
  /**
   * The credentials to sign with, asked for each token: pass an SDK client's
   * `config.credentials`, which caches and refreshes the function role's credentials.
   */
  readonly credentials: () => Promise<AwsCredentials>;
  /** @default the current time */
  readonly now?: () => Date;
}

/** How long a token is valid: RDS accepts at most 15 minutes. */
const EXPIRES_SECONDS = 900;
/** SHA-256 of the empty payload of the signed `GET`. */
const EMPTY_PAYLOAD_SHA256 = createHash('sha256').update('').digest('hex');

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
const escape = (value: string) =>
  encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/**
 * Signs one token at `date`: `<host>:<port>/?Action=connect&DBUser=<user>&X-Amz-...`, the
 * form `Signer.getAuthToken()` returns and RDS Proxy and Aurora accept as the password.
 */
export function signRdsAuthToken(
  options: Omit<RdsAuthTokenOptions, 'credentials' | 'now'>,
  credentials: AwsCredentials,
  date: Date,
): string {
  const longDate = date
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}/, '');
  const shortDate = longDate.slice(0, 8);
  const scope = `${shortDate}/${options.region}/rds-db/aws4_request`;
  const host = `${options.hostname}:${options.port}`;
  const query: Record<string, string> = {
    Action: 'connect',
    DBUser: options.username,
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${credentials.accessKeyId}/${scope}`,
    'X-Amz-Date': longDate,
    'X-Amz-Expires': String(EXPIRES_SECONDS),
    ...(credentials.sessionToken ? { 'X-Amz-Security-Token': credentials.sessionToken } : {}),
    'X-Amz-SignedHeaders': 'host',
  };
  const canonicalQuery = Object.keys(query)
    .sort()
    .map((key) => `${escape(key)}=${escape(query[key])}`)
    .join('&');
  const canonicalRequest = [
    'GET',
    '/',
    canonicalQuery,
    `host:${host}`,
    '',
    'host',
    EMPTY_PAYLOAD_SHA256,
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    longDate,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key = hmac(`AWS4${credentials.secretAccessKey}`, shortDate);
  for (const part of [options.region, 'rds-db', 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  const signed = { ...query, 'X-Amz-Signature': signature };
  const queryString = Object.keys(signed)
    .sort()
    .map((k) => `${escape(k)}=${escape(signed[k as keyof typeof signed])}`)
    .join('&');
  return `${host}/?${queryString}`;
}

/** A signer for the service's pool: a fresh token, with fresh credentials, for every new connection. */
export function rdsAuthTokenSigner(options: RdsAuthTokenOptions): AuthTokenSigner {
  const now = options.now ?? (() => new Date());
  return {
    async getAuthToken() {
      return signRdsAuthToken(options, await options.credentials(), now());
    },
  };
}
