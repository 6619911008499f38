/**
 * Lambda entry of the certificate probe: builds the clients once per container and hands
 * them to the probe logic in ./probe.ts.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { createProbeHandler, readProbeEnv } from './probe';
import { readCertificate } from './tls';

const env = readProbeEnv(process.env);
const cloudwatch = new CloudWatchClient({});

export const handler = createProbeHandler({
  ...env,
  readCertificate,
  putMetricData: (input) => cloudwatch.send(new PutMetricDataCommand(input)),
  logger: new Logger(),
});
