/**
 * The certificate probe end to end: real TLS handshakes with servers this file starts on
 * 127.0.0.1, and real PutMetricData calls to CloudWatch on a moto_server it starts, read
 * back with ListMetrics and GetMetricStatistics.
 */
import {
  CloudWatchClient,
  GetMetricStatisticsCommand,
  ListMetricsCommand,
  PutMetricDataCommand,
} from '@aws-sdk/client-cloudwatch';
import { parseProbeEndpoint } from '../../../lambda/certificate-probe/contract';
import { createProbeHandler } from '../../../lambda/certificate-probe/probe';
import { readCertificate } from '../../../lambda/certificate-probe/tls';
import { FakeLogger } from '../../helpers/lambda';
import { MotoServer, freePort, motoAvailable } from '../../helpers/moto-server';
import {
  LocalServer,
  opensslAvailable,
  selfSignedCertificate,
  startTlsServer,
} from '../../helpers/tls-server';

const ready =
  motoAvailable('the probe publishes to CloudWatch on moto_server') &&
  opensslAvailable('the probe test makes its TLS certificate with openssl');

(ready ? describe : describe.skip)('certificate probe publishing to CloudWatch on moto_server', () => {
  let moto: MotoServer;
  let cloudwatch: CloudWatchClient;
  let server: LocalServer;
  const namespace = 'ResilientShop/Certificates';

  beforeAll(async () => {
    moto = await MotoServer.start();
    cloudwatch = new CloudWatchClient(moto.clientConfig);
    server = await startTlsServer(selfSignedCertificate(10));
  });

  afterAll(async () => {
    cloudwatch?.destroy();
    await server?.close();
    await moto?.stop();
  });

  test('DaysToExpiry and ProbeFailed land under each endpoint, and an unreachable one reports a failure', async () => {
    // GIVEN a reachable endpoint (certificate valid 10 days) and one nobody listens on
    const reachable = `localhost:${server.port}`;
    const unreachable = `127.0.0.1:${await freePort()}`;
    const handler = createProbeHandler({
      endpoints: [reachable, unreachable].map(parseProbeEndpoint),
      namespace,
      timeoutMs: 2_000,
      readCertificate,
      putMetricData: (input) => cloudwatch.send(new PutMetricDataCommand(input)),
      logger: new FakeLogger(),
    });
    // WHEN the probe runs
    await handler();

    // THEN CloudWatch lists exactly these metrics and dimensions
    const { Metrics = [] } = await cloudwatch.send(new ListMetricsCommand({ Namespace: namespace }));
    expect(
      Metrics.map(
        (m) => `${m.MetricName} ${m.Dimensions?.map((d) => `${d.Name}=${d.Value}`).join(',')}`,
      ).sort(),
    ).toEqual(
      [
        `DaysToExpiry Endpoint=${reachable}`,
        `ProbeFailed Endpoint=${reachable}`,
        `ProbeFailed Endpoint=${unreachable}`,
      ].sort(),
    );
    // ...with 10 days for the reachable endpoint, and a failure for the other
    const statistic = async (metric: string, endpoint: string) => {
      const { Datapoints = [] } = await cloudwatch.send(
        new GetMetricStatisticsCommand({
          Namespace: namespace,
          MetricName: metric,
          Dimensions: [{ Name: 'Endpoint', Value: endpoint }],
          StartTime: new Date(Date.now() - 3_600_000),
          EndTime: new Date(Date.now() + 60_000),
          Period: 3_600,
          Statistics: ['Maximum'],
        }),
      );
      return Datapoints.map((d) => d.Maximum);
    };
    expect(await statistic('DaysToExpiry', reachable)).toEqual([10]);
    expect(await statistic('ProbeFailed', reachable)).toEqual([0]);
    expect(await statistic('ProbeFailed', unreachable)).toEqual([1]);
  });
});
