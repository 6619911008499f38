import { Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge, addCompliancePacks, reasonProblem } from '../lib/compliance';
import { buildTestApp, newApp, shippedConfig } from './helpers/app';
import { badAcknowledgements, cfnLint, missingContext, synthFindings, templatesIn } from './helpers/gates';
import { requireTool } from './helpers/tools';

const hasCfnLint = requireTool('cfn-lint', 'cfn-lint checks every synthesized template');

describe.each(['default', 'lean'] as const)('the whole app with config/%s.json', (name) => {
  const { app } = buildTestApp(shippedConfig(name));
  const { outdir, findings } = synthFindings(app);

  test('has no unacknowledged finding from AwsSolutions, NIST 800-53 R5, PCI DSS 3.2.1 or CloudFormation validation', () => {
    expect(findings.map((f) => `${f.plugin} ${f.severity} ${f.rule} at ${f.paths.join(', ')}`)).toEqual([]);
  });

  test('every acknowledgement has a specific reason and sits on a resource, not a stack', () => {
    expect(badAcknowledgements(app)).toEqual([]);
  });

  test('needs no context lookup (no AWS credentials at synth)', () => {
    expect(missingContext(outdir)).toEqual([]);
  });

  (hasCfnLint ? test : test.skip)('cfn-lint reports no error, warning or informational match', () => {
    const templates = templatesIn(outdir);
    // default: both regions and the DNS failover stack; lean: no standby, so one region only
    expect(templates.length).toBe(name === 'default' ? 3 : 1);
    expect(cfnLint(templates).map((m) => `${m.Level} ${m.Rule.Id} ${m.Filename}: ${m.Message}`)).toEqual([]);
  });
});

describe('the gates themselves', () => {
  test('an unacknowledged finding is reported', () => {
    // GIVEN an app with the packs and a queue with neither a DLQ nor TLS enforcement
    const app = newApp();
    addCompliancePacks(app);
    new sqs.Queue(new Stack(app, 'Bad'), 'Queue');
    // WHEN synthesized THEN the findings name the rules
    const rules = synthFindings(app).findings.map((f) => f.rule);
    expect(rules).toEqual(expect.arrayContaining(['AwsSolutions-SQS3', 'AwsSolutions-SQS4']));
  });

  test("the project's wiring pack runs in every synth: an alarm whose topic refuses CloudWatch fails it", () => {
    // GIVEN the registered packs and an alarm on a TLS-only topic (whose policy, alone,
    // replaces SNS's default and so allows nobody to publish)
    const app = newApp();
    addCompliancePacks(app);
    const stack = new Stack(app, 'Silent', { env: { account: '111111111111', region: 'us-east-1' } });
    const topic = new sns.Topic(stack, 'Topic', { enforceSSL: true });
    const alarm = new cloudwatch.Alarm(stack, 'Alarm', {
      metric: new cloudwatch.Metric({ namespace: 'Test', metricName: 'Errors' }),
      threshold: 1,
      evaluationPeriods: 1,
    });
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(topic));
    // WHEN synthesized THEN the wiring pack reports the alarm
    const findings = synthFindings(app).findings.filter((f) => f.plugin === 'ResilientShopWiring');
    expect(findings.map((f) => [f.rule, f.paths])).toEqual([
      [
        expect.stringMatching(/^ResilientShopWiring-TopicPublish\[Topic[0-9A-F]{8}:topic-policy\]$/),
        ['Silent/Alarm/Resource'],
      ],
    ]);
  });

  test('an acknowledged finding is not reported', () => {
    const app = newApp();
    addCompliancePacks(app);
    const queue = new sqs.Queue(new Stack(app, 'Acked'), 'Queue', { enforceSSL: true });
    acknowledge(
      queue.node.defaultChild!,
      ['AwsSolutions-SQS3'],
      'This queue is itself the dead-letter queue of another queue, so it needs no DLQ of its own.',
    );
    expect(synthFindings(app).findings.map((f) => f.rule)).not.toContain('AwsSolutions-SQS3');
  });

  test('a generic acknowledgement made directly through Validations is caught', () => {
    const app = newApp();
    const stack = new Stack(app, 'Lazy');
    const queue = new sqs.Queue(stack, 'Queue');
    Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'Not needed' });
    Validations.of(stack).acknowledge({
      id: 'AwsSolutions-SQS4',
      reason: 'Every queue in this stack is reached only from inside the VPC over the endpoint.',
    });
    expect(badAcknowledgements(app)).toEqual([
      expect.stringMatching(/^Lazy: (Annotation::)?AwsSolutions-SQS4: acknowledged on a whole stack/),
      expect.stringMatching(/^Lazy\/Queue: (Annotation::)?AwsSolutions-SQS3: reason "Not needed" is generic/),
    ]);
  });

  test('acknowledge() refuses a reason that is not a sentence', () => {
    const stack = new Stack();
    expect(() => acknowledge(stack, ['AwsSolutions-SQS3'], 'false positive')).toThrow(
      /the reason is generic/,
    );
    expect(() => acknowledge(stack, ['AwsSolutions-SQS3'], 'DLQ lives elsewhere.')).toThrow(
      /the reason is shorter than a sentence/,
    );
  });

  test.each([
    ['Not needed', 'is generic'],
    ['suppressed', 'is generic'],
    ['This is fine for this stack.', 'is generic'],
    ['Reviewed with security team OK', 'is shorter than a sentence (30 < 40 characters)'],
    ['Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'has fewer than six words'],
  ])('reasonProblem(%j) %s', (reason, problem) => {
    expect(reasonProblem(reason)).toBe(problem);
  });

  test('a specific sentence passes', () => {
    expect(
      reasonProblem('The ALB must accept HTTPS from anywhere because the storefront is public.'),
    ).toBeUndefined();
  });
});
