import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { CertificateProbe, CertificateProbeProps } from '../../lib/constructs/certificate-probe';
import { ROOT } from '../helpers/app';

const ENV = { account: '111111111111', region: 'us-east-1' };

function build(props: Partial<CertificateProbeProps> = {}) {
  const stack = new Stack(undefined, 'Test', { env: ENV });
  const topic = new sns.Topic(stack, 'Topic');
  const probe = new CertificateProbe(stack, 'Probe', {
    endpoints: ['shop.example.com', 'us-east-1.shop.example.com'],
    alarmTopic: topic,
    ...props,
  });
  return { stack, topic, probe };
}

const id = (stack: Stack, construct: { node: { defaultChild?: unknown } }) =>
  stack.getLogicalId(construct.node.defaultChild as never);

describe('CertificateProbe', () => {
  const { stack, topic, probe } = build();
  const template = Template.fromStack(stack);
  const fn = template.toJSON().Resources[id(stack, probe.worker.function)].Properties;

  test('runs every 6 hours on a schedule that retries a failed invocation twice', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(6 hours)',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [id(stack, probe.worker.function), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
        }),
      ],
    });
  });

  test('is told its endpoints, timeout and namespace, and may publish to that namespace only', () => {
    expect(fn.Environment.Variables).toMatchObject({
      PROBE_ENDPOINTS: '["shop.example.com","us-east-1.shop.example.com"]',
      PROBE_TIMEOUT_MS: '5000',
      POWERTOOLS_METRICS_NAMESPACE: 'ResilientShop/Certificates',
    });
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      Roles: [{ Ref: id(stack, probe.worker.role) }],
      PolicyDocument: {
        Statement: [
          {
            Action: 'cloudwatch:PutMetricData',
            Effect: 'Allow',
            Resource: '*',
            Condition: { StringEquals: { 'cloudwatch:namespace': 'ResilientShop/Certificates' } },
          },
        ],
      },
    });
  });

  test('alarms per endpoint when fewer than 30 days are left, and when the probe fails twice or does not run', () => {
    const actions = [{ Ref: id(stack, topic) }];
    for (const endpoint of ['shop.example.com', 'us-east-1.shop.example.com']) {
      const dimensions = [{ Name: 'Endpoint', Value: endpoint }];
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'ResilientShop/Certificates',
        MetricName: 'DaysToExpiry',
        Dimensions: dimensions,
        Statistic: 'Minimum',
        Period: 6 * 3600,
        Threshold: 30,
        ComparisonOperator: 'LessThanThreshold',
        TreatMissingData: 'ignore',
        AlarmActions: actions,
        OKActions: actions,
        AlarmDescription: Match.stringLikeRegexp(
          `${endpoint.replace(/\./g, '\\.')} expires .* Runbook: docs/runbooks/certificate-probe-expiry\\.md$`,
        ),
      });
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ProbeFailed',
        Dimensions: dimensions,
        Statistic: 'Maximum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        TreatMissingData: 'breaching',
        AlarmActions: actions,
        OKActions: actions,
        AlarmDescription: Match.stringLikeRegexp('Runbook: docs/runbooks/certificate-probe-failed\\.md$'),
      });
    }
    template.resourceCountIs('AWS::CloudWatch::Alarm', 4);
    const readme = readFileSync(join(ROOT, 'docs/runbooks/README.md'), 'utf8');
    for (const runbook of ['certificate-probe-expiry', 'certificate-probe-failed']) {
      expect(existsSync(join(ROOT, 'docs/runbooks', `${runbook}.md`))).toBe(true);
      expect(readme).toContain(`(${runbook}.md)`);
    }
  });

  test('an endpoint on another port keeps it in its Endpoint dimension', () => {
    const other = build({ endpoints: ['shop.example.com:8443'] });
    Template.fromStack(other.stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'DaysToExpiry',
      Dimensions: [{ Name: 'Endpoint', Value: 'shop.example.com:8443' }],
    });
  });

  test.each([
    [{ endpoints: [] }, /endpoints is empty/],
    [
      { endpoints: ['https://shop.example.com'] },
      /probe endpoint "https:\/\/shop.example.com" must be host or host:port/,
    ],
    [{ endpoints: ['a.example.com', 'a.example.com:443'] }, /lists a.example.com more than once/],
    [{ interval: Duration.hours(13) }, /interval 13 hours must be whole minutes from 1 minute to 12 hours/],
    [
      { connectTimeout: Duration.seconds(30) },
      /connectTimeout 30 s must be shorter than the probe's timeout 30 s/,
    ],
  ])('refuses %j', (props, message) => {
    expect(() => build(props as Partial<CertificateProbeProps>)).toThrow(message);
  });
});
