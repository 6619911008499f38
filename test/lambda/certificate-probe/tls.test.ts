/**
 * The certificate probe against TLS servers this file starts on 127.0.0.1, with
 * certificates it makes with openssl.
 */
import type { PutMetricDataCommandInput } from '@aws-sdk/client-cloudwatch';
import { parseProbeEndpoint } from '../../../lambda/certificate-probe/contract';
import { createProbeHandler } from '../../../lambda/certificate-probe/probe';
import { readCertificate } from '../../../lambda/certificate-probe/tls';
import { DownstreamError } from '../../../lambda/shared/errors';
import { FakeLogger } from '../../helpers/lambda';
import { freePort } from '../../helpers/ports';
import {
  LocalServer,
  opensslAvailable,
  selfSignedCertificate,
  startSilentServer,
  startTlsServer,
} from '../../helpers/tls-server';

const hasOpenssl = opensslAvailable('the certificate probe tests make their TLS certificates with openssl');

(hasOpenssl ? describe : describe.skip)('certificate probe against local TLS servers', () => {
  let tenDays: LocalServer;
  let silent: LocalServer;

  beforeAll(async () => {
    tenDays = await startTlsServer(selfSignedCertificate(10));
    silent = await startSilentServer();
  });

  afterAll(async () => {
    await tenDays?.close();
    await silent?.close();
  });

  test('a certificate that expires in 10 days reports 10', async () => {
    // GIVEN a server whose certificate was made just now, valid for 10 days
    const published: PutMetricDataCommandInput[] = [];
    const handler = createProbeHandler({
      endpoints: [parseProbeEndpoint(`localhost:${tenDays.port}`)],
      namespace: 'Test/Certificates',
      timeoutMs: 2_000,
      readCertificate,
      putMetricData: async (input) => published.push(input),
      logger: new FakeLogger(),
    });
    // WHEN the probe runs
    const [result] = await handler();
    // THEN it reports 10 days, and publishes that value
    expect(result).toEqual({
      endpoint: `localhost:${tenDays.port}`,
      ok: true,
      daysToExpiry: 10,
      authorized: false,
    });
    expect(published[0].MetricData?.[0]).toMatchObject({ MetricName: 'DaysToExpiry', Value: 10 });
  });

  test('reads the certificate of a server it does not trust, and says why', async () => {
    const certificate = await readCertificate(parseProbeEndpoint(`localhost:${tenDays.port}`), 2_000);
    expect(certificate).toMatchObject({ subject: 'localhost', authorized: false });
    expect(certificate.authorizationError).toMatch(/SELF_SIGNED|self.signed/i);
    expect(Math.abs(certificate.validTo.getTime() - (Date.now() + 10 * 86_400_000))).toBeLessThan(120_000);
  });

  test('a server that never completes the handshake fails within the timeout', async () => {
    const started = Date.now();
    const failure = await readCertificate(parseProbeEndpoint(`127.0.0.1:${silent.port}`), 300).catch(
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(DownstreamError);
    expect((failure as Error).message).toBe(`127.0.0.1:${silent.port}: no TLS handshake within 300 ms`);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  test('a port nobody listens on fails at once, naming the endpoint', async () => {
    const port = await freePort();
    await expect(readCertificate(parseProbeEndpoint(`127.0.0.1:${port}`), 2_000)).rejects.toThrow(
      new RegExp(`^127.0.0.1:${port}: connect ECONNREFUSED`),
    );
  });
});
