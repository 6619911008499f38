import { join } from 'node:path';
import { CfnResource, Duration, Lazy, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as lambdaEventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as nodejs from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import { acknowledge, nagResourceName } from '../compliance';
import { allowLogsToUseKey } from '../kms';
import { ResilientQueue, VISIBILITY_TIMEOUT_FACTOR } from './resilient-queue';

/** The repository root: where `lambda/` and package-lock.json live. */
export const REPO_ROOT = join(__dirname, '..', '..');

/**
 * The runtime every worker runs: the newest Node.js runtime aws-cdk-lib offers, named
 * explicitly rather than `NODEJS_LATEST` so that a CDK upgrade never changes it unseen.
 */
export const WORKER_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * Modules the bundle leaves to the runtime: the AWS SDK clients and the Smithy packages
 * they share, which the Lambda Node.js runtimes ship. Bundled, they would be 300-500 KB of
 * each bundle (docs/workers.md has the figures); small SDK utilities such as
 * `@aws-sdk/util-dynamodb` stay bundled.
 */
export const RUNTIME_PROVIDED_MODULES = ['@aws-sdk/client-*', '@smithy/*'];

/** Where a worker that must reach something inside the VPC (the database) runs. */
export interface WorkerVpcPlacement {
  /** The VPC. */
  readonly vpc: ec2.IVpc;
  /** The workers' security group (RegionalStack: `securityGroups.lambda`). */
  readonly securityGroup: ec2.ISecurityGroup;
  /**
   * Subnets for the function's network interfaces.
   *
   * @default - the private subnets with egress (NAT, and the interface endpoints)
   */
  readonly subnets?: ec2.SubnetSelection;
}

/**
 * The public SSM parameter holding the ARN of the AWS FIS Lambda extension layer for arm64
 * in the stack's region (major version 1). Resolved by CloudFormation at deploy time, so
 * synth looks nothing up.
 *
 * @see https://docs.aws.amazon.com/fis/latest/userguide/actions-lambda-extension-arns.html
 */
export const FIS_EXTENSION_LAYER_PARAMETER =
  '/aws/service/fis/lambda-extension/AWS-FIS-extension-arm64/1.x.x';

/**
 * Where AWS FIS writes the fault configurations of the `aws:lambda:*` actions and the FIS
 * Lambda extension reads them.
 *
 * @see https://docs.aws.amazon.com/fis/latest/userguide/use-lambda-actions.html
 */
export interface FaultInjectionLocation {
  /** The bucket: one per region, FIS writes to the one of the region the experiment runs in. */
  readonly bucket: s3.IBucket;
  /** The key prefix (a "folder"), ending with `/`. */
  readonly prefix: string;
}

/** What {@link WorkerFunction.consume} needs beyond the queue. */
export interface WorkerConsumeOptions {
  /**
   * Records per invocation.
   *
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * How long Lambda gathers records before invoking. Counts toward the visibility timeout.
   *
   * @default Duration.seconds(0)
   */
  readonly maxBatchingWindow?: Duration;
}

/** Properties of {@link WorkerFunction}. */
export interface WorkerFunctionProps {
  /** The handler's entry file, `lambda/<name>/index.ts` (exporting `handler`). */
  readonly entry: string;
  /** `POWERTOOLS_SERVICE_NAME`: the `service` key of every log line and metric. */
  readonly serviceName: string;
  /** The function's timeout: explicit, because a queue's visibility timeout is derived from it. */
  readonly timeout: Duration;
  /** Memory in MiB (CPU scales with it). */
  readonly memorySize: number;
  /**
   * Reserved concurrency: a bulkhead. The worker never takes more than this many of the
   * account's concurrent executions (a flood of messages cannot starve other functions),
   * is always able to run this many, and never opens more than this many database
   * connections at once.
   */
  readonly reservedConcurrency: number;

  /**
   * What the function does, shown in the console.
   *
   * @default - no description
   */
  readonly description?: string;

  /**
   * Further environment variables.
   *
   * @default - only the Powertools and Node.js settings
   */
  readonly environment?: Record<string, string>;

  /**
   * `POWERTOOLS_LOG_LEVEL`.
   *
   * @default 'INFO'
   */
  readonly logLevel?: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

  /**
   * How long the function's logs are kept.
   *
   * @default logs.RetentionDays.ONE_YEAR - long enough for a PCI DSS 10.7 review
   */
  readonly logRetention?: logs.RetentionDays;

  /**
   * Key that encrypts the log group. A given key must let the regional CloudWatch Logs
   * principal use it (`allowLogsToUseKey`).
   *
   * @default - a new key with yearly rotation
   */
  readonly logEncryptionKey?: kms.IKey;

  /**
   * Run inside the VPC, with the workers' security group.
   *
   * @default - outside any VPC
   */
  readonly vpc?: WorkerVpcPlacement;

  /**
   * Further esbuild settings. Local bundling, minification and source maps cannot be
   * turned off.
   *
   * @default - the AWS SDK clients left to the runtime ({@link RUNTIME_PROVIDED_MODULES})
   */
  readonly bundling?: nodejs.BundlingOptions;

  /**
   * What happens to the log group and its key when the stack is deleted.
   *
   * @default RemovalPolicy.RETAIN - logs are audit evidence
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Instruments the function for AWS FIS Lambda actions (`aws:lambda:invocation-error` and
   * the like): see {@link WorkerFunction.enableFaultInjection}.
   *
   * @default - not instrumented: no FIS layer, no wrapper, FIS Lambda actions fail on it
   */
  readonly faultInjection?: FaultInjectionLocation;
}

/**
 * A role whose grants land in one customer managed policy instead of CDK's inline
 * DefaultPolicy: NIST 800-53 AC-6 and PCI DSS 7.x want permissions reviewable as
 * policies, and every `grant*()` and event source keeps working unchanged.
 */
class WorkerRole extends iam.Role {
  public readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    super(scope, id, props);
    this.policy = new iam.ManagedPolicy(this, 'Policy', { description: props.description });
    this.addManagedPolicy(this.policy);
  }

  public override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.policy };
  }
}

/**
 * Tier 6: the preset every Lambda worker uses. A `NodejsFunction` on the newest Node.js
 * runtime ({@link WORKER_RUNTIME}), arm64, bundled by the local esbuild (never Docker:
 * `forceDockerBundling: false`, and esbuild is a devDependency, so CDK never falls back to
 * a bundling image), minified with source maps (`NODE_OPTIONS=--enable-source-maps` maps
 * stack traces back to the TypeScript), with:
 *
 * - an explicit timeout and memory size, and reserved concurrency as a bulkhead;
 * - its own log group, with retention, encrypted with a customer managed key;
 * - X-Ray active tracing;
 * - Powertools' environment (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_LOG_LEVEL`);
 * - a role with no AWS managed policy: logs, tracing, VPC networking and every grant in
 *   one customer managed policy of its own;
 * - optionally, a place in the VPC with the workers' security group ({@link WorkerVpcPlacement});
 * - optionally, the AWS FIS Lambda extension, for fault-injection experiments
 *   ({@link WorkerFunction.enableFaultInjection}).
 *
 * Consume a queue with {@link WorkerFunction.consume}, which checks the queue's visibility
 * timeout against this function's timeout and reports batch item failures.
 */
export class WorkerFunction extends Construct implements iam.IGrantable {
  /** The function. */
  public readonly function: nodejs.NodejsFunction;
  /** The execution role. */
  public readonly role: iam.Role;
  /** The customer managed policy holding every permission of the role. */
  public readonly policy: iam.ManagedPolicy;
  /** The function's log group. */
  public readonly logGroup: logs.LogGroup;
  /** The key encrypting the log group. */
  public readonly logEncryptionKey: kms.IKey;
  /** The resolved timeout. */
  public readonly timeout: Duration;
  /** The resolved reserved concurrency. */
  public readonly reservedConcurrency: number;
  /** Grants go to the role's managed policy. */
  public readonly grantPrincipal: iam.IPrincipal;
  private faultLocation?: FaultInjectionLocation;

  constructor(scope: Construct, id: string, props: WorkerFunctionProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const reserved = props.reservedConcurrency;
    if (!Token.isUnresolved(reserved) && (!Number.isInteger(reserved) || reserved < 1)) {
      throw new Error(
        `WorkerFunction ${this.node.path}: reservedConcurrency must be a whole number of at least 1, got ${reserved}`,
      );
    }
    this.timeout = props.timeout;
    this.reservedConcurrency = reserved;

    const role = new WorkerRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.serviceName} worker`,
    });
    this.role = role;
    this.policy = role.policy;
    this.grantPrincipal = role;

    this.logEncryptionKey =
      props.logEncryptionKey ??
      new kms.Key(this, 'LogKey', {
        description: `Encrypts the logs of the ${props.serviceName} worker`,
        enableKeyRotation: true,
        removalPolicy,
      });
    if (this.logEncryptionKey instanceof kms.Key) {
      allowLogsToUseKey(this.logEncryptionKey, 'AllowCloudWatchLogsForWorkerLogs');
    }
    this.logGroup = new logs.LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      encryptionKey: this.logEncryptionKey,
      removalPolicy,
    });
    // The Lambda service writes the function's logs with the execution role.
    this.logGroup.grantWrite(role);

    if (props.vpc) {
      // What AWSLambdaVPCAccessExecutionRole grants, without the managed policy: Lambda
      // manages the function's network interfaces with the execution role. These EC2
      // actions take no resource-level scope that Lambda's own creation check accepts.
      role.addToPrincipalPolicy(
        new iam.PolicyStatement({
          sid: 'ManageVpcNetworkInterfaces',
          actions: [
            'ec2:CreateNetworkInterface',
            'ec2:DescribeNetworkInterfaces',
            'ec2:DescribeSubnets',
            'ec2:DeleteNetworkInterface',
            'ec2:AssignPrivateIpAddresses',
            'ec2:UnassignPrivateIpAddresses',
          ],
          resources: ['*'],
        }),
      );
    }

    this.function = new nodejs.NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      projectRoot: REPO_ROOT,
      depsLockFilePath: join(REPO_ROOT, 'package-lock.json'),
      runtime: WORKER_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      description: props.description,
      timeout: props.timeout,
      memorySize: props.memorySize,
      reservedConcurrentExecutions: reserved,
      tracing: lambda.Tracing.ACTIVE,
      role,
      logGroup: this.logGroup,
      vpc: props.vpc?.vpc,
      vpcSubnets: props.vpc
        ? (props.vpc.subnets ?? { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS })
        : undefined,
      securityGroups: props.vpc ? [props.vpc.securityGroup] : undefined,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
        NODE_OPTIONS: '--enable-source-maps',
        ...props.environment,
      },
      bundling: {
        externalModules: RUNTIME_PROVIDED_MODULES,
        target: 'node24',
        format: nodejs.OutputFormat.CJS,
        sourcesContent: false,
        ...props.bundling,
        forceDockerBundling: false,
        minify: true,
        sourceMap: true,
      },
    });
    this.dropRedundantRoleDependency(role);
    if (props.faultInjection) this.enableFaultInjection(props.faultInjection);
    acknowledge(
      this.policy.node.defaultChild!,
      ['AwsSolutions-IAM5[Resource::*]'],
      "X-Ray's PutTraceSegments and PutTelemetryRecords take no resource, and Lambda manages a VPC function's network interfaces with EC2 actions it checks against resource *; every other statement of this policy names its resource.",
    );
  }

  /** Where FIS fault configurations are read from, once {@link enableFaultInjection} ran. */
  public get faultInjection(): FaultInjectionLocation | undefined {
    return this.faultLocation;
  }

  /**
   * Instruments the function for AWS FIS Lambda actions: adds the AWS FIS Lambda extension
   * layer (arm64, from {@link FIS_EXTENSION_LAYER_PARAMETER}), runs the runtime through its
   * wrapper (`AWS_LAMBDA_EXEC_WRAPPER=/opt/aws-fis/bootstrap`), points it at the location
   * FIS writes fault configurations to (`AWS_FIS_CONFIGURATION_LOCATION`), and lets the role
   * list and read that prefix only.
   *
   * Off unless called (or `faultInjection` given): the wrapper proxies every invocation and
   * the extension polls the bucket about once a minute, even with no experiment running.
   * Whoever may write under the prefix can make the function fail, so write access belongs
   * to the experiment role alone (`ChaosExperiments` denies it to everyone else).
   *
   * @see https://docs.aws.amazon.com/fis/latest/userguide/use-lambda-actions.html
   * @throws when the function is already instrumented
   */
  public enableFaultInjection(location: FaultInjectionLocation): void {
    if (this.faultLocation) {
      throw new Error(`WorkerFunction ${this.node.path}: enableFaultInjection was already called`);
    }
    if (!Token.isUnresolved(location.prefix) && !/^[^/].*\/$/.test(location.prefix)) {
      throw new Error(
        `WorkerFunction ${this.node.path}: the fault configuration prefix must not start with "/" and must end with "/", got "${location.prefix}"`,
      );
    }
    this.faultLocation = location;
    const configurations = location.bucket.arnForObjects(`${location.prefix}*`);
    this.function.addLayers(
      lambda.LayerVersion.fromLayerVersionArn(
        this,
        'FisExtension',
        ssm.StringParameter.valueForStringParameter(this, FIS_EXTENSION_LAYER_PARAMETER),
      ),
    );
    this.function.addEnvironment('AWS_LAMBDA_EXEC_WRAPPER', '/opt/aws-fis/bootstrap');
    this.function.addEnvironment(
      'AWS_FIS_CONFIGURATION_LOCATION',
      `${location.bucket.bucketArn}/${location.prefix}`,
    );
    this.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ListFaultConfigurations',
        actions: ['s3:ListBucket'],
        resources: [location.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${location.prefix}*`] } },
      }),
      new iam.PolicyStatement({
        sid: 'ReadFaultConfigurations',
        actions: ['s3:GetObject'],
        resources: [configurations],
      }),
    );
    location.bucket.encryptionKey?.grantDecrypt(this);
    acknowledge(
      this.policy.node.defaultChild!,
      [`AwsSolutions-IAM5[Resource::${nagResourceName(Stack.of(this).resolve(configurations))}]`],
      'FIS writes one fault configuration object per experiment under this prefix, with keys it generates; the function reads that prefix and nothing else of the bucket.',
    );
  }

  /**
   * `lambda.Function` makes the function depend on its role, which its `Role` GetAtt
   * already orders; cfn-lint reports the DependsOn as redundant (W3005). The rendered
   * DependsOn keeps everything else (the role's policy, which Lambda checks when it
   * creates the function, and the VPC routes), and drops the role alone.
   */
  private dropRedundantRoleDependency(role: iam.Role): void {
    const cfnFunction = this.function.node.defaultChild as lambda.CfnFunction;
    const cfnRole = role.node.defaultChild as iam.CfnRole;
    const stack = Stack.of(this);
    cfnFunction.addOverride(
      'DependsOn',
      Lazy.list({
        produce: () =>
          cfnFunction
            .obtainDependencies()
            .filter((r): r is CfnResource => r instanceof CfnResource && r !== cfnRole)
            .map((r) => stack.getLogicalId(r))
            .sort(),
      }),
    );
  }

  /**
   * Consumes a queue: an SQS event source reporting batch item failures (only the failed
   * records are retried; the rest are deleted), with the event source's maximum
   * concurrency at the reserved concurrency so the poller never invokes more functions
   * than may run (each throttled invocation would count as a receive toward the DLQ).
   *
   * Acknowledges the findings that ask an SQS-invoked function for an asynchronous DLQ and
   * its event source mapping for an on-failure destination: the queue's DLQ is both.
   *
   * @throws when the queue's visibility timeout is less than 6 x this function's timeout
   * plus the batching window, or the reserved concurrency is below 2 (the smallest
   * maximum concurrency an SQS event source accepts)
   */
  public consume(
    queue: ResilientQueue,
    options: WorkerConsumeOptions = {},
  ): lambdaEventSources.SqsEventSource {
    const window = options.maxBatchingWindow ?? Duration.seconds(0);
    const timeout = this.timeout.toSeconds();
    const required = VISIBILITY_TIMEOUT_FACTOR * timeout + window.toSeconds();
    if (queue.visibilityTimeout.toSeconds() < required) {
      throw new Error(
        `WorkerFunction ${this.node.path} cannot consume ${queue.queueName}: its visibility timeout ` +
          `${queue.visibilityTimeout.toSeconds()} s is less than ${VISIBILITY_TIMEOUT_FACTOR} x the function's timeout ${timeout} s` +
          `${window.toSeconds() > 0 ? ` + batching window ${window.toSeconds()} s` : ''} = ${required} s; ` +
          `give the ResilientQueue consumerTimeout: Duration.seconds(${timeout})`,
      );
    }
    if (this.reservedConcurrency < 2) {
      throw new Error(
        `WorkerFunction ${this.node.path} cannot consume ${queue.queueName}: reservedConcurrency ${this.reservedConcurrency} ` +
          'is below 2, the smallest maximum concurrency of an SQS event source; raise it to at least 2',
      );
    }
    const source = new lambdaEventSources.SqsEventSource(queue.queue, {
      batchSize: options.batchSize ?? 10,
      maxBatchingWindow: options.maxBatchingWindow,
      reportBatchItemFailures: true,
      maxConcurrency: Math.min(this.reservedConcurrency, 1000),
    });
    this.function.addEventSource(source);
    acknowledge(
      this.function.node.defaultChild!,
      ['NIST.800.53.R5-LambdaDLQ', 'Serverless-LambdaDLQ'],
      "This function is invoked by its SQS event source mapping, not asynchronously, so an asynchronous DLQ would never receive anything; a record that keeps failing moves to the queue's own dead-letter queue through its redrive policy.",
    );
    const mapping = this.function.node.findAll().find((c) => c instanceof lambda.CfnEventSourceMapping);
    acknowledge(
      mapping!,
      ['Serverless-LambdaEventSourceMappingDestination'],
      "SQS event source mappings take no on-failure destination (Lambda offers one for streams and Kafka only); failed records reach the queue's dead-letter queue after maxReceiveCount receives.",
    );
    return source;
  }
}
