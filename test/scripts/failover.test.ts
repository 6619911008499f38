import {
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  CreateLaunchConfigurationCommand,
  DescribeAutoScalingGroupsCommand,
} from '@aws-sdk/client-auto-scaling';
import { CreateHealthCheckCommand, GetHealthCheckCommand, Route53Client } from '@aws-sdk/client-route-53';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import {
  FORCED_UNHEALTHY_PATH,
  FailoverClients,
  FailoverError,
  FailoverOptions,
  READY_PATH,
  failover,
  parseArgs,
  plan,
} from '../../scripts/failover';
import { FailoverNames, failoverNames } from '../../scripts/failover-names';
import { ShopStacks } from '../../lib/app';
import { buildTestApp, configWith, shippedConfig } from '../helpers/app';
import { synthFindings } from '../helpers/gates';
import { MotoServer, motoAvailable } from '../helpers/moto-server';

const names = failoverNames(shippedConfig('default'));
const PRIMARY_ARN = names.primary.clusterArn;
const STANDBY_ARN = names.standby.clusterArn;
const PRIMARY_CHECK = 'hc-primary';
const STANDBY_CHECK = 'hc-standby';

/** One recorded call: which client (service and region), the action, its input. */
type Call = [string, string, Record<string, unknown>];

/** What the stubbed AWS answers from; tests change it before a run. */
interface World {
  writer: string;
  failoverState?: { Status: string; ToDbClusterArn: string; IsDataLossAllowed?: boolean };
  /** DescribeGlobalClusters answers that pass after a promotion starts before it completes. */
  pollsToPromote: number;
  clusterStatus: string;
  groups: Record<string, { MinSize: number; DesiredCapacity: number; healthy: number }>;
  /** Healthy checkers (of 16) per health check. */
  reachable: Record<string, number>;
  paths: Record<string, string>;
  route53Down: boolean;
  /** Instances the group gains per DescribeAutoScalingGroups once asked for more. */
  launchPerPoll: number;
}

function world(overrides: Partial<World> = {}): World {
  return {
    writer: PRIMARY_ARN,
    pollsToPromote: 2,
    clusterStatus: 'available',
    groups: {
      [names.primary.autoScalingGroupName]: { MinSize: 3, DesiredCapacity: 3, healthy: 3 },
      [names.standby.autoScalingGroupName]: { MinSize: 2, DesiredCapacity: 2, healthy: 2 },
    },
    reachable: { [PRIMARY_CHECK]: 16, [STANDBY_CHECK]: 16 },
    paths: { [PRIMARY_CHECK]: READY_PATH, [STANDBY_CHECK]: READY_PATH },
    route53Down: false,
    launchPerPoll: 1,
    ...overrides,
  };
}

/** Clients that record every call and answer from `w`, as AWS would. */
function stubClients(w: World): { clients: FailoverClients; calls: Call[] } {
  const calls: Call[] = [];
  let pollsLeft = 0;
  let promoting = false;
  const sender = (label: string) => ({
    send: (async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      const action = command.constructor.name.replace(/Command$/, '');
      calls.push([label, action, command.input]);
      const input = command.input;
      switch (action) {
        case 'DescribeGlobalClusters':
          // A promotion this run started completes after `pollsToPromote` answers; one found
          // under way (another operator's) never does here.
          if (promoting && w.failoverState && pollsLeft-- <= 0) {
            w.writer = w.failoverState.ToDbClusterArn;
            w.failoverState = undefined;
          }
          return {
            GlobalClusters: [
              {
                GlobalClusterIdentifier: input.GlobalClusterIdentifier,
                FailoverState: w.failoverState,
                GlobalClusterMembers: [PRIMARY_ARN, STANDBY_ARN].map((arn) => ({
                  DBClusterArn: arn,
                  IsWriter: arn === w.writer,
                })),
              },
            ],
          };
        case 'DescribeDBClusters':
          return {
            DBClusters: [{ DBClusterIdentifier: input.DBClusterIdentifier, Status: w.clusterStatus }],
          };
        case 'SwitchoverGlobalCluster':
        case 'FailoverGlobalCluster':
          w.failoverState = {
            Status: 'pending',
            ToDbClusterArn: input.TargetDbClusterIdentifier as string,
            IsDataLossAllowed: input.AllowDataLoss as boolean | undefined,
          };
          pollsLeft = w.pollsToPromote;
          promoting = true;
          return {};
        case 'DescribeAutoScalingGroups': {
          const name = (input.AutoScalingGroupNames as string[])[0];
          const group = w.groups[name];
          if (!group) return { AutoScalingGroups: [] };
          group.healthy = Math.min(group.DesiredCapacity, group.healthy + w.launchPerPoll);
          return {
            AutoScalingGroups: [
              {
                AutoScalingGroupName: name,
                MinSize: group.MinSize,
                DesiredCapacity: group.DesiredCapacity,
                Instances: Array.from({ length: group.healthy }, () => ({
                  LifecycleState: 'InService',
                  HealthStatus: 'Healthy',
                })),
              },
            ],
          };
        }
        case 'UpdateAutoScalingGroup': {
          const group = w.groups[input.AutoScalingGroupName as string];
          group.MinSize = (input.MinSize as number | undefined) ?? group.MinSize;
          group.DesiredCapacity = (input.DesiredCapacity as number | undefined) ?? group.DesiredCapacity;
          return {};
        }
        case 'ListHealthChecks':
          if (w.route53Down) throw new Error('connect ETIMEDOUT route53.amazonaws.com');
          return {
            HealthChecks: [
              [PRIMARY_CHECK, names.primary.regionalDomainName],
              [STANDBY_CHECK, names.standby.regionalDomainName],
            ].map(([Id, fqdn]) => ({
              Id,
              HealthCheckConfig: { Type: 'HTTPS', FullyQualifiedDomainName: fqdn, ResourcePath: w.paths[Id] },
            })),
            IsTruncated: false,
          };
        case 'GetHealthCheckStatus': {
          const up = w.reachable[input.HealthCheckId as string];
          return {
            HealthCheckObservations: Array.from({ length: 16 }, (_, i) => ({
              StatusReport: {
                Status: i < up ? 'Success: HTTP Status Code 200, OK' : 'Failure: Connection timed out.',
              },
            })),
          };
        }
        case 'GetHealthCheck':
          return {
            HealthCheck: {
              Id: input.HealthCheckId,
              HealthCheckVersion: 7,
              HealthCheckConfig: { ResourcePath: w.paths[input.HealthCheckId as string] },
            },
          };
        case 'UpdateHealthCheck':
          w.paths[input.HealthCheckId as string] = input.ResourcePath as string;
          return {};
        default:
          throw new Error(`unexpected ${action}`);
      }
    }) as never,
  });
  const rds = new Map<string, ReturnType<typeof sender>>();
  const asg = new Map<string, ReturnType<typeof sender>>();
  return {
    calls,
    clients: {
      rds: (region) => rds.get(region) ?? rds.set(region, sender(`rds:${region}`)).get(region)!,
      autoScaling: (region) =>
        asg.get(region) ?? asg.set(region, sender(`autoscaling:${region}`)).get(region)!,
      route53: sender('route53'),
    },
  };
}

const options = (overrides: Partial<FailoverOptions> = {}): FailoverOptions => ({
  ...parseArgs(['--to', 'standby']),
  pollMs: 1_000,
  writerTimeoutMs: 10_000,
  capacityTimeoutMs: 10_000,
  ...overrides,
});
const noSleep = async () => undefined;
const WRITES = new Set([
  'SwitchoverGlobalCluster',
  'FailoverGlobalCluster',
  'UpdateAutoScalingGroup',
  'UpdateHealthCheck',
]);
const writesOf = (calls: Call[]) => calls.filter(([, action]) => WRITES.has(action));

describe('npm run failover (stubbed AWS clients)', () => {
  test('--to standby --planned: checks the standby, switches over, waits for the writer, scales the fleet, then forces DNS', async () => {
    // GIVEN both regions healthy, the primary the writer
    const w = world();
    const { clients, calls } = stubClients(w);
    const lines: string[] = [];
    // WHEN a planned failover to the standby runs
    const report = await failover(clients, names, options({ planned: true }), (l) => lines.push(l), noSleep);
    // THEN the writes are, in order: the switchover, the standby fleet to full size, the
    // primary's health check pointed at a path that fails
    expect(writesOf(calls)).toEqual([
      [
        'rds:us-west-2',
        'SwitchoverGlobalCluster',
        { GlobalClusterIdentifier: 'resilient-shop-global', TargetDbClusterIdentifier: STANDBY_ARN },
      ],
      [
        'autoscaling:us-west-2',
        'UpdateAutoScalingGroup',
        { AutoScalingGroupName: 'ResilientShop-Standby-checkout', MinSize: 3, DesiredCapacity: 3 },
      ],
      [
        'route53',
        'UpdateHealthCheck',
        { HealthCheckId: PRIMARY_CHECK, ResourcePath: FORCED_UNHEALTHY_PATH, HealthCheckVersion: 7 },
      ],
    ]);
    // ...the standby's health was read before anything changed, and the writer waited for
    const firstWrite = calls.findIndex(([, action]) => WRITES.has(action));
    expect(
      calls.slice(0, firstWrite).map(([, a, input]) => `${a} ${String(input.HealthCheckId ?? '')}`.trim()),
    ).toEqual([
      'DescribeGlobalClusters',
      'DescribeDBClusters',
      'ListHealthChecks',
      `GetHealthCheckStatus ${STANDBY_CHECK}`,
    ]);
    const scale = calls.findIndex(([, action]) => action === 'UpdateAutoScalingGroup');
    expect(calls.slice(firstWrite, scale).filter(([, a]) => a === 'DescribeGlobalClusters').length).toBe(3);
    expect(w.writer).toBe(STANDBY_ARN);
    // ...nothing was asked of the primary region: the run works with it gone
    expect(calls.map(([client]) => client).filter((c) => c.endsWith('us-east-1'))).toEqual([]);
    expect(report).toEqual({ promotion: 'switchover', capacityReached: true, dns: 'forced', warnings: [] });
    expect(lines.filter((l) => /^\d\. /.test(l))).toEqual([
      '1. check that the standby (us-west-2) can take over',
      '2. switch over to resilientshop-standby-aurora (no data loss)',
      '3. wait until resilientshop-standby-aurora is the writer',
      '4. scale the standby fleet ResilientShop-Standby-checkout to 3 instances',
      "5. send shop.example.com to the standby: the primary's health check fails by force",
    ]);
  });

  test('--to standby (unplanned) fails over allowing data loss, and forces DNS although the primary already fails', async () => {
    // GIVEN the primary region gone: its health check reached by no checker
    const w = world({ reachable: { [PRIMARY_CHECK]: 0, [STANDBY_CHECK]: 16 } });
    const { clients, calls } = stubClients(w);
    const report = await failover(clients, names, options(), () => undefined, noSleep);
    expect(writesOf(calls)[0]).toEqual([
      'rds:us-west-2',
      'FailoverGlobalCluster',
      {
        GlobalClusterIdentifier: 'resilient-shop-global',
        TargetDbClusterIdentifier: STANDBY_ARN,
        AllowDataLoss: true,
      },
    ]);
    // The path is forced anyway: when the old primary comes back its check must keep failing
    expect(w.paths[PRIMARY_CHECK]).toBe(FORCED_UNHEALTHY_PATH);
    expect(report.promotion).toBe('failover');
  });

  test.each([
    [
      'its health check is reached by too few checkers (2 of 16, not over 18%)',
      { reachable: { [PRIMARY_CHECK]: 16, [STANDBY_CHECK]: 2 } },
      /reach https:\/\/us-west-2\.shop\.example\.com\/health\/ready from 2 of 16 locations: the standby region is not healthy/,
    ],
    [
      'its cluster is not available',
      { clusterStatus: 'modifying' },
      /resilientshop-standby-aurora is modifying, not available/,
    ],
    [
      'another failover is under way',
      { failoverState: { Status: 'failing-over', ToDbClusterArn: PRIMARY_ARN } },
      /a failover to .*resilientshop-primary-aurora is failing-over/,
    ],
  ])('refuses, changing nothing, when the standby cannot take over: %s', async (_, overrides, message) => {
    const { clients, calls } = stubClients(world(overrides as Partial<World>));
    await expect(failover(clients, names, options(), () => undefined, noSleep)).rejects.toThrow(message);
    expect(writesOf(calls)).toEqual([]);
  });

  test('run again after it stopped halfway, it resumes: no second promotion, no second scaling, DNS left as forced', async () => {
    // GIVEN a run that had promoted the standby, scaled it and forced DNS
    const w = world({
      writer: STANDBY_ARN,
      paths: { [PRIMARY_CHECK]: FORCED_UNHEALTHY_PATH, [STANDBY_CHECK]: READY_PATH },
    });
    w.groups[names.standby.autoScalingGroupName] = { MinSize: 3, DesiredCapacity: 3, healthy: 3 };
    const { clients, calls } = stubClients(w);
    // WHEN it runs again
    const report = await failover(clients, names, options(), () => undefined, noSleep);
    // THEN it only reads
    expect(writesOf(calls)).toEqual([]);
    expect(report).toEqual({ promotion: 'none', capacityReached: true, dns: 'unchanged', warnings: [] });
  });

  test("when Route 53's API does not answer, the database and the fleet still move, and the run says what is left", async () => {
    const w = world({ route53Down: true });
    const { clients, calls } = stubClients(w);
    const lines: string[] = [];
    const report = await failover(clients, names, options(), (l) => lines.push(l), noSleep);
    expect(writesOf(calls).map(([, action]) => action)).toEqual([
      'FailoverGlobalCluster',
      'UpdateAutoScalingGroup',
    ]);
    expect(report.dns).toBe('not-reached');
    expect(report.warnings).toEqual([
      expect.stringMatching(/Route 53's API did not answer \(connect ETIMEDOUT/),
      expect.stringMatching(
        /could not be forced.*Run this command again, or: aws route53 update-health-check .* --resource-path \/health\/failed-over/,
      ),
    ]);
    expect(lines.at(-1)).toBe('done, with 2 warning(s) above');
  });

  test('a writer that does not arrive in time stops the run before the fleet and DNS are touched', async () => {
    const { clients, calls } = stubClients(world({ pollsToPromote: 1_000 }));
    await expect(failover(clients, names, options(), () => undefined, noSleep)).rejects.toThrow(
      new FailoverError(
        'resilientshop-standby-aurora is not the writer after 0 minutes: look at the global cluster in the RDS console, then run the same command again (it resumes)',
      ),
    );
    expect(writesOf(calls).map(([, action]) => action)).toEqual(['FailoverGlobalCluster']);
  });

  test('a fleet slower than the capacity timeout is a warning: DNS still moves to where the writer is', async () => {
    const { clients } = stubClients(world({ launchPerPoll: 0 }));
    const report = await failover(
      clients,
      names,
      options({ capacityTimeoutMs: 3_000 }),
      () => undefined,
      noSleep,
    );
    expect(report.capacityReached).toBe(false);
    expect(report.dns).toBe('forced');
    expect(report.warnings).toEqual([
      expect.stringMatching(/fewer than 3 healthy instances.*DNS moves anyway/),
    ]);
  });

  test('--to primary --planned: switches back, restores the primary health check path, and the standby fleet to its warm minimum', async () => {
    // GIVEN the state after a failover to the standby
    const w = world({
      writer: STANDBY_ARN,
      paths: { [PRIMARY_CHECK]: FORCED_UNHEALTHY_PATH, [STANDBY_CHECK]: READY_PATH },
      reachable: { [PRIMARY_CHECK]: 0, [STANDBY_CHECK]: 16 },
    });
    w.groups[names.standby.autoScalingGroupName] = { MinSize: 3, DesiredCapacity: 3, healthy: 3 };
    const { clients, calls } = stubClients(w);
    const report = await failover(
      clients,
      names,
      options({ to: 'primary', planned: true }),
      () => undefined,
      noSleep,
    );
    expect(writesOf(calls)).toEqual([
      [
        'rds:us-east-1',
        'SwitchoverGlobalCluster',
        { GlobalClusterIdentifier: 'resilient-shop-global', TargetDbClusterIdentifier: PRIMARY_ARN },
      ],
      [
        'route53',
        'UpdateHealthCheck',
        { HealthCheckId: PRIMARY_CHECK, ResourcePath: READY_PATH, HealthCheckVersion: 7 },
      ],
      [
        'autoscaling:us-west-2',
        'UpdateAutoScalingGroup',
        { AutoScalingGroupName: 'ResilientShop-Standby-checkout', MinSize: 2 },
      ],
    ]);
    // The forced path says nothing about the primary: it was not used to refuse the switch
    expect(
      calls.filter(([, a, i]) => a === 'GetHealthCheckStatus' && i.HealthCheckId === PRIMARY_CHECK),
    ).toEqual([]);
    expect(report).toMatchObject({ promotion: 'switchover', dns: 'restored', warnings: [] });
  });

  test('--dry-run calls nothing and prints the writes a real run makes, in the same order', async () => {
    const { clients, calls } = stubClients(world());
    const lines: string[] = [];
    const report = await failover(clients, names, options({ dryRun: true }), (l) => lines.push(l), noSleep);
    expect(calls).toEqual([]);
    expect(report.promotion).toBe('none');
    expect(lines[0]).toBe(
      'DRY RUN: unplanned failover from primary (us-east-1) to standby (us-west-2), global cluster resilient-shop-global',
    );
    expect(lines).toContain(
      `   rds(us-west-2):FailoverGlobalCluster {"GlobalClusterIdentifier":"resilient-shop-global","TargetDbClusterIdentifier":"${STANDBY_ARN}","AllowDataLoss":true}`,
    );
    expect(lines.at(-1)).toMatch(/^dry run: nothing called\. DNS follows within about 90 s of step 5/);
    // The plan's writes are those of a real run from the same state (health-check ids aside)
    const real = stubClients(world());
    await failover(real.clients, names, options(), () => undefined, noSleep);
    const withoutIds = (input: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(input).filter(([key]) => key !== 'HealthCheckId' && key !== 'HealthCheckVersion'),
      );
    const plannedWrites = plan(names, { to: 'standby', planned: false })
      .flatMap((step) => step.calls)
      .map(
        (c) =>
          [
            c.command.constructor.name.replace(/Command$/, ''),
            c.command.input as Record<string, unknown>,
          ] as const,
      )
      .filter(([action]) => WRITES.has(action))
      .map(([action, input]) => [action, withoutIds(input)]);
    expect(plannedWrites).toEqual(
      writesOf(real.calls).map(([, action, input]) => [action, withoutIds(input)]),
    );
  });
});

describe('parseArgs', () => {
  test('reads the target and the flags', () => {
    expect(
      parseArgs(['--to', 'primary', '--planned', '--dry-run', '--config', 'config/lean.json']),
    ).toMatchObject({
      to: 'primary',
      planned: true,
      dryRun: true,
      configPath: 'config/lean.json',
    });
    expect(parseArgs(['--to', 'standby'])).toMatchObject({
      to: 'standby',
      planned: false,
      dryRun: false,
      configPath: 'config/default.json',
    });
  });

  test.each([
    [[], /say where to: --to standby or --to primary/],
    [['--to', 'west'], /--to needs standby or primary, got west/],
    [['--to', 'standby', '--force'], /unknown argument --force/],
    [['--to', 'standby', '--config'], /--config needs a file/],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(message);
  });

  test('a config without a standby region has nothing to fail over to', () => {
    expect(() => failoverNames(shippedConfig('lean'))).toThrow(
      /no standby region: there is nothing to fail over to/,
    );
  });
});

describe('the names the script acts on are the ones the stacks create', () => {
  // Read from the written templates: a finding of another tier must not hide a renamed resource here.
  let stacks: ShopStacks;
  let outdir: string;
  beforeAll(() => {
    const built = buildTestApp(shippedConfig('default'));
    stacks = built.stacks;
    outdir = synthFindings(built.app).outdir;
  });
  test.each(['primary', 'standby'] as const)(
    '%s: cluster, global cluster, fleet and regional name',
    (role) => {
      const stack = role === 'primary' ? stacks.primary : stacks.standby!;
      const template = Template.fromJSON(
        JSON.parse(readFileSync(join(outdir, stack.templateFile), 'utf8')) as Record<string, unknown>,
      );
      const region = (names as FailoverNames)[role];
      expect(stack.region).toBe(region.region);
      expect(stack.stackName).toBe(region.stackName);
      template.hasResourceProperties('AWS::RDS::DBCluster', {
        DBClusterIdentifier: region.clusterIdentifier,
      });
      template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
        AutoScalingGroupName: region.autoScalingGroupName,
        MinSize: String(region.normalMinCapacity),
      });
      expect(stack.loadBalancer.regionalDomainName).toBe(region.regionalDomainName);
      if (role === 'primary') {
        template.hasResourceProperties('AWS::RDS::GlobalCluster', {
          GlobalClusterIdentifier: names.globalClusterIdentifier,
        });
      } else {
        template.hasResourceProperties('AWS::RDS::DBCluster', {
          GlobalClusterIdentifier: names.globalClusterIdentifier,
        });
      }
    },
  );

  test('an app name with capitals in the stack name still gives a valid cluster identifier', () => {
    const renamed = failoverNames(configWith({ appName: 'acme-store' }));
    expect(renamed.standby.clusterIdentifier).toBe('acmestore-standby-aurora');
    expect(renamed.standby.autoScalingGroupName).toBe('AcmeStore-Standby-checkout');
  });
});

const hasMoto = motoAvailable('the failover is tested against Route 53 and Auto Scaling on moto_server');

(hasMoto ? describe : describe.skip)(
  'npm run failover against Route 53 and Auto Scaling on moto_server',
  () => {
    let moto: MotoServer;
    beforeAll(async () => {
      moto = await MotoServer.start();
    });
    afterAll(async () => {
      await moto?.stop();
    });

    test('forces the primary health check and scales the standby fleet (moto has no global-cluster calls: RDS is stubbed)', async () => {
      // GIVEN the two health checks and the standby fleet at its warm size, on moto
      const config = (region: string) => ({ ...moto.clientConfig, region });
      const route53 = new Route53Client(config('us-east-1'));
      const autoScaling = new AutoScalingClient(config('us-west-2'));
      try {
        const ids: Record<string, string> = {};
        for (const fqdn of [names.primary.regionalDomainName, names.standby.regionalDomainName]) {
          const { HealthCheck } = await route53.send(
            new CreateHealthCheckCommand({
              CallerReference: fqdn,
              HealthCheckConfig: {
                Type: 'HTTPS',
                FullyQualifiedDomainName: fqdn,
                Port: 443,
                ResourcePath: READY_PATH,
                RequestInterval: 10,
                FailureThreshold: 3,
              },
            }),
          );
          ids[fqdn] = HealthCheck!.Id!;
        }
        await autoScaling.send(
          new CreateLaunchConfigurationCommand({
            LaunchConfigurationName: 'checkout',
            ImageId: 'ami-12c6146b',
            InstanceType: 'm7g.large',
          }),
        );
        await autoScaling.send(
          new CreateAutoScalingGroupCommand({
            AutoScalingGroupName: names.standby.autoScalingGroupName,
            LaunchConfigurationName: 'checkout',
            MinSize: 2,
            MaxSize: 12,
            DesiredCapacity: 2,
            AvailabilityZones: ['us-west-2a', 'us-west-2b', 'us-west-2c'],
          }),
        );
        const rds = stubClients(world()).clients.rds;
        const clients: FailoverClients = {
          rds,
          autoScaling: () => autoScaling,
          route53,
        };

        // WHEN the standby takes over
        const report = await failover(clients, names, options(), () => undefined, noSleep);

        // THEN Route 53 checks the primary at the path that fails, the standby as before...
        const check = async (fqdn: string) =>
          (await route53.send(new GetHealthCheckCommand({ HealthCheckId: ids[fqdn] }))).HealthCheck!
            .HealthCheckConfig!.ResourcePath;
        expect(await check(names.primary.regionalDomainName)).toBe(FORCED_UNHEALTHY_PATH);
        expect(await check(names.standby.regionalDomainName)).toBe(READY_PATH);
        // ...and the standby fleet runs at the full minimum
        const { AutoScalingGroups = [] } = await autoScaling.send(
          new DescribeAutoScalingGroupsCommand({
            AutoScalingGroupNames: [names.standby.autoScalingGroupName],
          }),
        );
        expect(AutoScalingGroups[0]).toMatchObject({ MinSize: 3, DesiredCapacity: 3 });
        expect(report).toMatchObject({
          promotion: 'failover',
          capacityReached: true,
          dns: 'forced',
          warnings: [],
        });
      } finally {
        route53.destroy();
        autoScaling.destroy();
      }
    });
  },
);
