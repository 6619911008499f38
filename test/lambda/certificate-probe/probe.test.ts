import type { PutMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { parseProbeEndpoint } from '../../../lambda/certificate-probe/contract';
import { createProbeHandler, daysToExpiry, readProbeEnv } from '../../../lambda/certificate-probe/probe';
import type { PeerCertificate } from '../../../lambda/certificate-probe/tls';
import { DownstreamError } from '../../../lambda/shared/errors';
import { FakeLogger } from '../../helpers/lambda';

const NOW = new Date('2026-11-01T00:00:00Z');
const DAY = 86_400_000;

/** A probe whose TLS reads and PutMetricData calls are fakes. */
function probe(
  certificates: Record<string, PeerCertificate | Error>,
  putMetricData?: () => Promise<unknown>,
) {
  const published: PutMetricDataCommandInput[] = [];
  const logger = new FakeLogger();
  const handler = createProbeHandler({
    endpoints: Object.keys(certificates).map(parseProbeEndpoint),
    namespace: 'Test/Certificates',
    timeoutMs: 1_000,
    readCertificate: async (endpoint) => {
      const found = certificates[endpoint.label];
      if (found instanceof Error) throw found;
      return found;
    },
    putMetricData:
      putMetricData ??
      (async (input) => {
        published.push(input);
        return {};
      }),
    logger,
    now: () => NOW,
  });
  return { handler, published, logger };
}

describe('certificate probe (injected fakes)', () => {
  test('publishes DaysToExpiry and ProbeFailed=0 per endpoint, and ProbeFailed=1 alone for one that fails', async () => {
    // GIVEN one endpoint whose certificate expires in 45.5 days and one that does not answer
    const { handler, published, logger } = probe({
      'shop.example.com': { validTo: new Date(NOW.getTime() + 45.5 * DAY), authorized: true },
      'eu-west-1.shop.example.com': new DownstreamError('eu-west-1.shop.example.com: connect ECONNREFUSED'),
    });
    // WHEN the probe runs
    const results = await handler({}, undefined);
    // THEN one PutMetricData call carries both endpoints, each under its Endpoint dimension
    expect(results).toEqual([
      { endpoint: 'shop.example.com', ok: true, daysToExpiry: 45.5, authorized: true },
      {
        endpoint: 'eu-west-1.shop.example.com',
        ok: false,
        error: 'eu-west-1.shop.example.com: connect ECONNREFUSED',
      },
    ]);
    expect(published).toEqual([
      {
        Namespace: 'Test/Certificates',
        MetricData: [
          {
            MetricName: 'DaysToExpiry',
            Dimensions: [{ Name: 'Endpoint', Value: 'shop.example.com' }],
            Value: 45.5,
            Unit: 'None',
            Timestamp: NOW,
          },
          {
            MetricName: 'ProbeFailed',
            Dimensions: [{ Name: 'Endpoint', Value: 'shop.example.com' }],
            Value: 0,
            Unit: 'Count',
            Timestamp: NOW,
          },
          {
            MetricName: 'ProbeFailed',
            Dimensions: [{ Name: 'Endpoint', Value: 'eu-west-1.shop.example.com' }],
            Value: 1,
            Unit: 'Count',
            Timestamp: NOW,
          },
        ],
      },
    ]);
    expect(logger.at('error')[0].extra).toEqual({
      endpoint: 'eu-west-1.shop.example.com',
      error: 'eu-west-1.shop.example.com: connect ECONNREFUSED',
    });
  });

  test('an expired or untrusted certificate is still measured (negative days) and logged as a warning', async () => {
    const { handler, published, logger } = probe({
      'old.example.com': {
        validTo: new Date(NOW.getTime() - 2 * DAY),
        authorized: false,
        authorizationError: 'CERT_HAS_EXPIRED',
      },
    });
    await handler();
    expect(published[0].MetricData?.map((m) => [m.MetricName, m.Value])).toEqual([
      ['DaysToExpiry', -2],
      ['ProbeFailed', 0],
    ]);
    expect(logger.at('warn')[0].extra).toMatchObject({
      endpoint: 'old.example.com',
      authorizationError: 'CERT_HAS_EXPIRED',
    });
  });

  test('a failed PutMetricData fails the run (the failure alarm then sees no data)', async () => {
    const { handler } = probe({ 'shop.example.com': { validTo: NOW, authorized: true } }, async () => {
      throw new Error('ThrottlingException');
    });
    await expect(handler()).rejects.toThrow('ThrottlingException');
  });

  test.each([
    [10 * DAY - 2_000, 10],
    [29.996 * DAY, 30],
    [29.99 * DAY, 29.99],
    [-0.5 * DAY, -0.5],
  ])('daysToExpiry(%d ms ahead) is %d: two decimals', (ms, days) => {
    expect(daysToExpiry(new Date(NOW.getTime() + ms), NOW)).toBe(days);
  });
});

describe('readProbeEnv', () => {
  test('reads endpoints, namespace and timeout', () => {
    expect(
      readProbeEnv({
        PROBE_ENDPOINTS: '["a.example.com"]',
        POWERTOOLS_METRICS_NAMESPACE: 'N',
        PROBE_TIMEOUT_MS: '2000',
      }),
    ).toEqual({
      endpoints: [{ host: 'a.example.com', port: 443, label: 'a.example.com' }],
      namespace: 'N',
      timeoutMs: 2_000,
    });
  });

  test.each([
    [{ POWERTOOLS_METRICS_NAMESPACE: 'N' }, /PROBE_ENDPOINTS is required/],
    [{ PROBE_ENDPOINTS: '["a.example.com"]' }, /POWERTOOLS_METRICS_NAMESPACE is required/],
    [
      { PROBE_ENDPOINTS: '["a.example.com"]', POWERTOOLS_METRICS_NAMESPACE: 'N', PROBE_TIMEOUT_MS: '0' },
      /PROBE_TIMEOUT_MS must be/,
    ],
  ])('refuses %j', (env, message) => {
    expect(() => readProbeEnv(env)).toThrow(message);
  });
});
