import type { Logger } from '@aws-lambda-powertools/logger';
import type { PutMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import type { Context } from 'aws-lambda';
import { integerEnv, requiredEnv } from '../shared/env';
import {
  DAYS_TO_EXPIRY_METRIC,
  ENDPOINT_DIMENSION,
  PROBE_FAILED_METRIC,
  type ProbeEndpoint,
  parseProbeEndpoints,
} from './contract';
import type { ReadCertificate } from './tls';

const DAY_MS = 86_400_000;

/** What one endpoint's probe found. */
export type ProbeResult =
  | {
      readonly endpoint: string;
      readonly ok: true;
      readonly daysToExpiry: number;
      readonly authorized: boolean;
    }
  | { readonly endpoint: string; readonly ok: false; readonly error: string };

/** What the probe needs from the outside; `index.ts` builds the real ones once per container. */
export interface ProbeDeps {
  readonly endpoints: readonly ProbeEndpoint[];
  readonly namespace: string;
  /** Per endpoint: DNS, connect and handshake. */
  readonly timeoutMs: number;
  readonly readCertificate: ReadCertificate;
  /** CloudWatch PutMetricData (the SDK client's `send`, or a fake). */
  readonly putMetricData: (input: PutMetricDataCommandInput) => Promise<unknown>;
  readonly logger: Pick<Logger, 'info' | 'warn' | 'error' | 'addContext'>;
  readonly now?: () => Date;
}

/** The environment `index.ts` reads (set by lib/constructs/certificate-probe.ts). */
export interface ProbeEnv {
  readonly endpoints: ProbeEndpoint[];
  readonly namespace: string;
  readonly timeoutMs: number;
}

export function readProbeEnv(env: Readonly<Record<string, string | undefined>>): ProbeEnv {
  return {
    endpoints: parseProbeEndpoints(requiredEnv(env, 'PROBE_ENDPOINTS')),
    namespace: requiredEnv(env, 'POWERTOOLS_METRICS_NAMESPACE'),
    timeoutMs: integerEnv(env, 'PROBE_TIMEOUT_MS', 5_000),
  };
}

/** Days from `now` to `validTo`, to two decimals (a certificate made a second ago for 10 days reads 10). */
export function daysToExpiry(validTo: Date, now: Date): number {
  return Math.round(((validTo.getTime() - now.getTime()) / DAY_MS) * 100) / 100;
}

/**
 * The scheduled certificate probe: TLS-connects to every endpoint at once and publishes,
 * in one PutMetricData call, per endpoint (dimension `Endpoint`):
 *
 * - `DaysToExpiry` and `ProbeFailed` = 0 when a certificate was read, or
 * - `ProbeFailed` = 1 (and no `DaysToExpiry`) when the endpoint gave no TLS answer in time,
 *   so an unreachable endpoint shows up as a value, not as silence.
 *
 * Route 53's HTTPS health checks do not validate certificates, so an expired certificate
 * fails no health check and triggers no failover: this probe is what notices it. A
 * certificate that does not verify (wrong name, untrusted chain) is still measured, and
 * logged as a warning.
 *
 * @throws when PutMetricData fails: the invocation errors, and the probe-failure alarm
 * sees no data, which it treats as breaching
 */
export function createProbeHandler(
  deps: ProbeDeps,
): (event?: unknown, context?: Context) => Promise<ProbeResult[]> {
  const now = deps.now ?? (() => new Date());
  return async (_event, context) => {
    if (context) deps.logger.addContext(context);
    const timestamp = now();
    const results = await Promise.all(
      deps.endpoints.map(async (endpoint): Promise<ProbeResult> => {
        try {
          const certificate = await deps.readCertificate(endpoint, deps.timeoutMs);
          const days = daysToExpiry(certificate.validTo, timestamp);
          const detail = {
            endpoint: endpoint.label,
            daysToExpiry: days,
            validTo: certificate.validTo.toISOString(),
            subject: certificate.subject,
            issuer: certificate.issuer,
          };
          if (certificate.authorized) deps.logger.info('certificate read', detail);
          else {
            deps.logger.warn('certificate read, but it does not verify', {
              ...detail,
              authorizationError: certificate.authorizationError,
            });
          }
          return {
            endpoint: endpoint.label,
            ok: true,
            daysToExpiry: days,
            authorized: certificate.authorized,
          };
        } catch (err) {
          const error = err instanceof Error ? err.message : String(err);
          deps.logger.error('certificate probe failed', { endpoint: endpoint.label, error });
          return { endpoint: endpoint.label, ok: false, error };
        }
      }),
    );
    const dimensions = (endpoint: string) => [{ Name: ENDPOINT_DIMENSION, Value: endpoint }];
    await deps.putMetricData({
      Namespace: deps.namespace,
      MetricData: results.flatMap((r) => [
        ...(r.ok
          ? [
              {
                MetricName: DAYS_TO_EXPIRY_METRIC,
                Dimensions: dimensions(r.endpoint),
                Value: r.daysToExpiry,
                Unit: 'None' as const,
                Timestamp: timestamp,
              },
            ]
          : []),
        {
          MetricName: PROBE_FAILED_METRIC,
          Dimensions: dimensions(r.endpoint),
          Value: r.ok ? 0 : 1,
          Unit: 'Count' as const,
          Timestamp: timestamp,
        },
      ]),
    });
    return results;
  };
}
