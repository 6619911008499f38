import { CfnResource, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { RESILIENCE_RULES } from '../../../lib/nag/resilience-checks';
import { resilienceFindings, resourcePath } from '../fixtures';

const RULE = RESILIENCE_RULES.lambdaLimits;

function worker(stack: Stack, props: Partial<lambda.FunctionProps> = {}): lambda.Function {
  return new lambda.Function(stack, 'Worker', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => {};'),
    ...props,
  });
}

describe('LambdaLimits: every function has an explicit timeout and reserved concurrency', () => {
  test('a function with neither is reported for both', () => {
    // GIVEN CDK's defaults: no Timeout (Lambda's 3 s), no reserved concurrency
    let fn!: lambda.Function;
    const findings = resilienceFindings((stack) => {
      fn = worker(stack);
    });
    // THEN each gap is its own finding, so one can be acknowledged without the other
    expect(findings).toEqual([
      `${RULE}[no-reserved-concurrency] at ${resourcePath(fn)}`,
      `${RULE}[no-timeout] at ${resourcePath(fn)}`,
    ]);
  });

  test('a function with a timeout and reserved concurrency passes', () => {
    const findings = resilienceFindings((stack) => {
      worker(stack, { timeout: Duration.seconds(30), reservedConcurrentExecutions: 5 });
    });
    expect(findings).toEqual([]);
  });

  test('acknowledging the reserved concurrency with its exact id keeps the timeout finding', () => {
    let fn!: lambda.Function;
    const findings = resilienceFindings((stack) => {
      fn = worker(stack);
      Validations.of(fn).acknowledge({
        id: `${RULE}[no-reserved-concurrency]`,
        reason: 'Fixture: only the reserved-concurrency finding is acknowledged on this function.',
      });
    });
    expect(findings).toEqual([`${RULE}[no-timeout] at ${resourcePath(fn)}`]);
  });

  test("a plain CfnResource of type AWS::Lambda::Function (CDK's custom resource handlers) is checked too", () => {
    // GIVEN a handler written the way CustomResourceProvider writes it: a timeout, no reserved concurrency
    let handler!: CfnResource;
    const findings = resilienceFindings((stack) => {
      handler = new CfnResource(stack, 'Handler', {
        type: 'AWS::Lambda::Function',
        properties: {
          Code: { ZipFile: 'exports.handler = async () => {};' },
          Handler: 'index.handler',
          Runtime: 'nodejs22.x',
          Role: 'arn:aws:iam::111111111111:role/handler',
          Timeout: 900,
        },
      });
    });
    expect(findings).toEqual([`${RULE}[no-reserved-concurrency] at ${handler.node.path}`]);
  });
});
