/**
 * Moves the checkout's writer and traffic from one region to the other.
 *
 *   npm run failover -- --to standby|primary [--planned] [--dry-run] [--config config/default.json]
 *
 * The steps, in order, each printed with the AWS calls it makes:
 *
 * 1. Check that the target region can take over: its cluster is an `available` member of
 *    the global cluster, and Route 53's checkers reach its `/health/ready`.
 * 2. Promote its cluster: `--planned` switches over (SwitchoverGlobalCluster: both regions
 *    up, the writer moves once the target has caught up, nothing is lost); without it the
 *    script fails over (FailoverGlobalCluster with AllowDataLoss: for a primary region
 *    that is gone, losing what had not replicated, `AuroraGlobalDBRPOLag`, typically about
 *    a second).
 * 3. Wait until the target cluster is the writer.
 * 4. Scale the target fleet to the full minimum (`compute.minCapacity`), and wait (bounded)
 *    for that many healthy instances.
 * 5. DNS: towards the standby, the primary's health check is pointed at
 *    {@link FORCED_UNHEALTHY_PATH}, a path the service does not serve, so Route 53 answers
 *    with the standby whether or not the old primary region still answers (inverting the
 *    check would turn a dead primary healthy again). Towards the primary, the path is
 *    restored and Route 53 moves traffic back once the primary passes; then the standby
 *    fleet returns to its warm-standby minimum.
 *
 * Every step checks the state first, so a run that stopped halfway can simply be run
 * again. `--dry-run` calls nothing: it prints the calls a run would make, from the config
 * alone, so it needs no credentials. The region calls go to the target region, never the
 * region being left (which may be gone); Route 53's API is global (served from
 * us-east-1): when it does not answer, the run goes on without it and says what is left to
 * do. Credentials come from the usual AWS environment (`AWS_PROFILE`, ...).
 *
 * Runbook: docs/runbooks/region-failover.md.
 */
import {
  AutoScalingClient,
  DescribeAutoScalingGroupsCommand,
  UpdateAutoScalingGroupCommand,
} from '@aws-sdk/client-auto-scaling';
import {
  DescribeDBClustersCommand,
  DescribeGlobalClustersCommand,
  FailoverGlobalClusterCommand,
  type GlobalCluster,
  RDSClient,
  SwitchoverGlobalClusterCommand,
} from '@aws-sdk/client-rds';
import {
  GetHealthCheckCommand,
  GetHealthCheckStatusCommand,
  type HealthCheck,
  ListHealthChecksCommand,
  Route53Client,
  UpdateHealthCheckCommand,
} from '@aws-sdk/client-route-53';
import { ConfigError, loadConfig } from '../lib/config';
import {
  DEFAULT_FAILURE_THRESHOLD,
  DEFAULT_REQUEST_INTERVAL_SECONDS,
  LOAD_BALANCER_ALIAS_TTL,
  failoverTiming,
} from '../lib/constructs/failover-dns';
import { FailoverNames, FailoverRegion, FailoverTarget, failoverNames } from './failover-names';

/** The path the service answers: what the health checks call normally. */
export const READY_PATH = '/health/ready';

/**
 * The path the primary's health check is pointed at to force traffic to the standby: the
 * service has no such route (404), so the check fails whether the region answers or not,
 * and the console shows why.
 */
export const FORCED_UNHEALTHY_PATH = '/health/failed-over';

/** Route 53 calls an endpoint healthy while more than this share of its checkers do. */
export const HEALTHY_CHECKER_SHARE = 0.18;

/** What `npm run failover` was asked to do. */
export interface FailoverOptions {
  readonly to: FailoverTarget;
  readonly planned: boolean;
  readonly dryRun: boolean;
  readonly configPath: string;
  /** Between two polls while waiting. */
  readonly pollMs: number;
  /** Longest wait for the target cluster to become the writer. */
  readonly writerTimeoutMs: number;
  /** Longest wait for the scaled fleet's instances; then the run goes on with a warning. */
  readonly capacityTimeoutMs: number;
}

/** The part of each SDK client the script uses: a real client, or a stub in tests. */
export interface FailoverClients {
  rds(region: string): Pick<RDSClient, 'send'>;
  autoScaling(region: string): Pick<AutoScalingClient, 'send'>;
  readonly route53: Pick<Route53Client, 'send'>;
}

/** What the run did. */
export interface FailoverReport {
  /** The global-cluster call made, or `none` (already the writer, or a dry run). */
  readonly promotion: 'switchover' | 'failover' | 'none';
  /** Whether the target fleet reached the full minimum of healthy instances in time. */
  readonly capacityReached: boolean;
  /** What was done to the primary's health check path. */
  readonly dns: 'forced' | 'restored' | 'unchanged' | 'not-reached';
  /** Things left for the operator. */
  readonly warnings: string[];
}

/** A problem that stops the run; printed without a stack trace. */
export class FailoverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FailoverError';
  }
}

const USAGE =
  'usage: npm run failover -- --to standby|primary [--planned] [--dry-run] [--config config/default.json]';

/**
 * Parses the command line (the arguments after `--`).
 *
 * @throws FailoverError naming the bad argument, with the usage line
 */
export function parseArgs(argv: readonly string[]): FailoverOptions {
  let to: FailoverTarget | undefined;
  let planned = false;
  let dryRun = false;
  let configPath = 'config/default.json';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--planned') planned = true;
    else if (arg === '--dry-run') dryRun = true;
    else if (arg === '--to') {
      const value = argv[++i];
      if (value !== 'standby' && value !== 'primary') {
        throw new FailoverError(`--to needs standby or primary, got ${value ?? 'nothing'}\n${USAGE}`);
      }
      to = value;
    } else if (arg === '--config') {
      const value = argv[++i];
      if (!value) throw new FailoverError(`--config needs a file\n${USAGE}`);
      configPath = value;
    } else throw new FailoverError(`unknown argument ${arg}\n${USAGE}`);
  }
  if (!to) throw new FailoverError(`say where to: --to standby or --to primary\n${USAGE}`);
  return {
    to,
    planned,
    dryRun,
    configPath,
    pollMs: 10_000,
    writerTimeoutMs: 15 * 60_000,
    capacityTimeoutMs: 15 * 60_000,
  };
}

/** An SDK v3 command, as far as printing it goes. */
type AnyCommand = { constructor: { name: string }; input: unknown };

/** One call of the plan: which client (service and region), and the command. */
export interface PlannedCall {
  readonly service: string;
  readonly command: AnyCommand;
}

/** One step of the plan. */
export interface PlannedStep {
  readonly title: string;
  readonly calls: PlannedCall[];
}

/** One AWS call as printed: `service:Action {input}`. */
function describeCall(service: string, command: AnyCommand): string {
  return `   ${service}:${command.constructor.name.replace(/Command$/, '')} ${JSON.stringify(command.input)}`;
}

/** The regions of a failover: where the writer goes, and where it comes from. */
function sides(names: FailoverNames, to: FailoverTarget): { target: FailoverRegion; source: FailoverRegion } {
  return to === 'standby'
    ? { target: names.standby, source: names.primary }
    : { target: names.primary, source: names.standby };
}

/**
 * The calls a run makes, in order, built from the names alone (a dry run prints them).
 * The reads whose answers decide whether a write is needed are listed with the write.
 */
export function plan(names: FailoverNames, options: Pick<FailoverOptions, 'to' | 'planned'>): PlannedStep[] {
  const { target, source } = sides(names, options.to);
  const gc = { GlobalClusterIdentifier: names.globalClusterIdentifier };
  const rds = (command: AnyCommand) => ({
    service: `rds(${target.region})`,
    command,
  });
  const asg = (command: AnyCommand) => ({
    service: `autoscaling(${target.region})`,
    command,
  });
  const r53 = (command: AnyCommand) => ({
    service: 'route53',
    command,
  });
  /** Reads the primary's health check, then points it at `path` (how DNS is forced either way). */
  const primaryHealthCheckPath = (path: string) => {
    const HealthCheckId = `<health check of ${names.primary.regionalDomainName}>`;
    return [
      r53(new GetHealthCheckCommand({ HealthCheckId })),
      r53(new UpdateHealthCheckCommand({ HealthCheckId, ResourcePath: path })),
    ];
  };
  const steps: PlannedStep[] = [
    {
      title: `check that the ${target.role} (${target.region}) can take over`,
      calls: [
        rds(new DescribeGlobalClustersCommand(gc)),
        rds(new DescribeDBClustersCommand({ DBClusterIdentifier: target.clusterIdentifier })),
        r53(new ListHealthChecksCommand({})),
        r53(
          new GetHealthCheckStatusCommand({
            HealthCheckId: `<health check of ${target.regionalDomainName}>`,
          }),
        ),
      ],
    },
    {
      title: options.planned
        ? `switch over: ${target.clusterIdentifier} becomes the writer once it has caught up (no data loss)`
        : `fail over: ${target.clusterIdentifier} becomes the writer now (what had not replicated from ${source.region} is lost)`,
      calls: [
        rds(
          options.planned
            ? new SwitchoverGlobalClusterCommand({ ...gc, TargetDbClusterIdentifier: target.clusterArn })
            : new FailoverGlobalClusterCommand({
                ...gc,
                TargetDbClusterIdentifier: target.clusterArn,
                AllowDataLoss: true,
              }),
        ),
      ],
    },
    {
      title: `wait until ${target.clusterIdentifier} is the writer`,
      calls: [
        rds(new DescribeGlobalClustersCommand(gc)),
        rds(new DescribeDBClustersCommand({ DBClusterIdentifier: target.clusterIdentifier })),
      ],
    },
    {
      title: `scale the ${target.role} fleet to ${names.fullCapacity} instances`,
      calls: [
        asg(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [target.autoScalingGroupName] })),
        asg(
          new UpdateAutoScalingGroupCommand({
            AutoScalingGroupName: target.autoScalingGroupName,
            MinSize: names.fullCapacity,
            DesiredCapacity: names.fullCapacity,
          }),
        ),
      ],
    },
    options.to === 'standby'
      ? {
          title: `send ${names.domainName} to the standby: the primary's health check fails by force`,
          calls: primaryHealthCheckPath(FORCED_UNHEALTHY_PATH),
        }
      : {
          title: `let ${names.domainName} come back to the primary, and the standby fleet back to ${names.standby.normalMinCapacity}`,
          calls: [
            ...primaryHealthCheckPath(READY_PATH),
            {
              service: `autoscaling(${names.standby.region})`,
              command: new UpdateAutoScalingGroupCommand({
                AutoScalingGroupName: names.standby.autoScalingGroupName,
                MinSize: names.standby.normalMinCapacity,
              }),
            },
          ],
        },
  ];
  return steps;
}

/** Route 53's answers about the two regional health checks, or why there are none. */
interface HealthChecks {
  readonly byName: Map<string, HealthCheck>;
  readonly error?: string;
}

/** Health checks of the regional names (HTTPS, by name), all pages. */
async function findHealthChecks(
  route53: FailoverClients['route53'],
  regional: readonly string[],
  call: (service: string, command: AnyCommand) => void,
): Promise<HealthChecks> {
  const byName = new Map<string, HealthCheck>();
  try {
    let marker: string | undefined;
    do {
      const command = new ListHealthChecksCommand({ Marker: marker });
      call('route53', command);
      const page = await route53.send(command);
      for (const check of page.HealthChecks ?? []) {
        const name = check.HealthCheckConfig?.FullyQualifiedDomainName;
        if (!name || !regional.includes(name) || check.HealthCheckConfig?.Type !== 'HTTPS') continue;
        if (byName.has(name)) {
          throw new FailoverError(
            `several HTTPS health checks call ${name} (${byName.get(name)!.Id}, ${check.Id}): delete the stray one`,
          );
        }
        byName.set(name, check);
      }
      marker = page.IsTruncated ? page.NextMarker : undefined;
    } while (marker);
    return { byName };
  } catch (err) {
    if (err instanceof FailoverError) throw err;
    return { byName, error: (err as Error).message };
  }
}

/** The share of Route 53's checkers that currently reach an endpoint. */
async function checkerShare(
  route53: FailoverClients['route53'],
  healthCheckId: string,
  call: (service: string, command: AnyCommand) => void,
): Promise<{ healthy: number; total: number }> {
  const command = new GetHealthCheckStatusCommand({ HealthCheckId: healthCheckId });
  call('route53', command);
  const { HealthCheckObservations = [] } = await route53.send(command);
  const healthy = HealthCheckObservations.filter((o) => o.StatusReport?.Status?.startsWith('Success')).length;
  return { healthy, total: HealthCheckObservations.length };
}

/** Waits, polling `check` every `pollMs`, until it returns true or `timeoutMs` is spent. */
async function pollUntil(
  check: () => Promise<boolean>,
  options: { pollMs: number; timeoutMs: number },
  sleep: (ms: number) => Promise<void>,
): Promise<boolean> {
  for (let waited = 0; ; waited += options.pollMs) {
    if (await check()) return true;
    if (waited >= options.timeoutMs) return false;
    await sleep(options.pollMs);
  }
}

/**
 * Runs the failover (or prints its plan) against the clients, printing each step and
 * each AWS call with `out`.
 *
 * @throws FailoverError when the target cannot take over, the promotion does not finish
 * in time, or a name the config implies does not exist
 */
export async function failover(
  clients: FailoverClients,
  names: FailoverNames,
  options: FailoverOptions,
  out: (line: string) => void,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<FailoverReport> {
  const { target, source } = sides(names, options.to);
  const timing = failoverTiming(
    DEFAULT_REQUEST_INTERVAL_SECONDS,
    DEFAULT_FAILURE_THRESHOLD,
    LOAD_BALANCER_ALIAS_TTL.toSeconds(),
  );
  out(
    `${options.dryRun ? 'DRY RUN: ' : ''}${options.planned ? 'planned switchover' : 'unplanned failover'} ` +
      `from ${source.role} (${source.region}) to ${target.role} (${target.region}), global cluster ${names.globalClusterIdentifier}`,
  );
  if (options.dryRun) {
    plan(names, options).forEach((step, i) => {
      out(`${i + 1}. ${step.title}`);
      for (const c of step.calls) out(describeCall(c.service, c.command));
    });
    out(
      `dry run: nothing called. DNS follows within about ${timing.totalSeconds} s of step 5 ` +
        `(${timing.detectionSeconds} s for Route 53 to see the health check fail, ${timing.ttlSeconds} s TTL)`,
    );
    return { promotion: 'none', capacityReached: false, dns: 'unchanged', warnings: [] };
  }

  const warnings: string[] = [];
  const warn = (message: string) => {
    warnings.push(message);
    out(`   WARNING: ${message}`);
  };
  const call = (service: string, command: AnyCommand) => out(describeCall(service, command));
  const rds = clients.rds(target.region);
  const rdsName = `rds(${target.region})`;
  const asg = clients.autoScaling(target.region);
  const asgName = `autoscaling(${target.region})`;
  const gcInput = { GlobalClusterIdentifier: names.globalClusterIdentifier };

  const globalCluster = async (): Promise<GlobalCluster> => {
    const command = new DescribeGlobalClustersCommand(gcInput);
    call(rdsName, command);
    const { GlobalClusters = [] } = await rds.send(command);
    if (!GlobalClusters[0]) throw new FailoverError(`no global cluster ${names.globalClusterIdentifier}`);
    return GlobalClusters[0];
  };
  const clusterStatus = async (): Promise<string | undefined> => {
    const command = new DescribeDBClustersCommand({ DBClusterIdentifier: target.clusterIdentifier });
    call(rdsName, command);
    const { DBClusters = [] } = await rds.send(command);
    return DBClusters[0]?.Status;
  };
  const isWriter = (gc: GlobalCluster) =>
    gc.GlobalClusterMembers?.some((m) => m.DBClusterArn === target.clusterArn && m.IsWriter) ?? false;

  // 1. Can the target take over?
  out(`1. check that the ${target.role} (${target.region}) can take over`);
  const gc = await globalCluster();
  if (!gc.GlobalClusterMembers?.some((m) => m.DBClusterArn === target.clusterArn)) {
    throw new FailoverError(
      `${target.clusterArn} is not a member of ${names.globalClusterIdentifier} (members: ` +
        `${(gc.GlobalClusterMembers ?? []).map((m) => m.DBClusterArn).join(', ') || 'none'})`,
    );
  }
  const alreadyWriter = isWriter(gc);
  const inProgress = gc.FailoverState?.Status;
  if (inProgress && gc.FailoverState?.ToDbClusterArn !== target.clusterArn) {
    throw new FailoverError(
      `a failover to ${gc.FailoverState?.ToDbClusterArn} is ${inProgress}: wait for it to end before moving the writer again`,
    );
  }
  const status = await clusterStatus();
  if (status !== 'available') {
    throw new FailoverError(
      `${target.clusterIdentifier} is ${status ?? 'missing'}, not available: it cannot take over`,
    );
  }
  const checks = await findHealthChecks(
    clients.route53,
    [names.primary.regionalDomainName, names.standby.regionalDomainName],
    call,
  );
  if (checks.error) {
    warn(
      `Route 53's API did not answer (${checks.error}): the target's health is judged by its cluster alone, ` +
        'and DNS cannot be forced in step 5',
    );
  } else {
    const targetCheck = checks.byName.get(target.regionalDomainName);
    if (!targetCheck?.Id) {
      throw new FailoverError(
        `no Route 53 health check calls ${target.regionalDomainName}: is the DNS failover stack deployed?`,
      );
    }
    if (targetCheck.HealthCheckConfig?.ResourcePath === FORCED_UNHEALTHY_PATH) {
      out(
        `   the ${target.role}'s health check is forced unhealthy (step 5 restores it): its status says nothing yet`,
      );
    } else {
      const share = await checkerShare(clients.route53, targetCheck.Id, call).catch((err: Error) => {
        warn(`Route 53 did not say how the ${target.role} is (${err.message}): judged by its cluster alone`);
        return undefined;
      });
      if (share && (share.total === 0 || share.healthy / share.total <= HEALTHY_CHECKER_SHARE)) {
        throw new FailoverError(
          `Route 53's checkers reach https://${target.regionalDomainName}${READY_PATH} from ${share.healthy} of ${share.total} ` +
            `locations: the ${target.role} region is not healthy; fix it first (docs/runbooks/region-failover.md)`,
        );
      }
      if (share)
        out(`   ${share.healthy} of ${share.total} Route 53 checkers reach ${target.regionalDomainName}`);
    }
  }
  out(`   ${target.clusterIdentifier} is available${alreadyWriter ? ' and already the writer' : ''}`);

  // 2. Promote.
  let promotion: FailoverReport['promotion'] = 'none';
  if (alreadyWriter) {
    out(`2. promote: nothing to do, ${target.clusterIdentifier} is the writer`);
  } else if (inProgress) {
    out(
      `2. promote: a ${gc.FailoverState?.IsDataLossAllowed ? 'failover' : 'switchover'} to it is ${inProgress} already`,
    );
  } else {
    const promoteInput = { ...gcInput, TargetDbClusterIdentifier: target.clusterArn };
    const command = options.planned
      ? new SwitchoverGlobalClusterCommand(promoteInput)
      : new FailoverGlobalClusterCommand({ ...promoteInput, AllowDataLoss: true });
    out(
      options.planned
        ? `2. switch over to ${target.clusterIdentifier} (no data loss)`
        : `2. fail over to ${target.clusterIdentifier}, allowing the loss of what had not replicated from ${source.region}`,
    );
    call(rdsName, command);
    await rds.send(command);
    promotion = options.planned ? 'switchover' : 'failover';
  }

  // 3. The new writer.
  out(`3. wait until ${target.clusterIdentifier} is the writer`);
  const promoted = await pollUntil(
    async () => {
      const now = await globalCluster();
      return isWriter(now) && !now.FailoverState?.Status && (await clusterStatus()) === 'available';
    },
    { pollMs: options.pollMs, timeoutMs: options.writerTimeoutMs },
    sleep,
  );
  if (!promoted) {
    throw new FailoverError(
      `${target.clusterIdentifier} is not the writer after ${Math.round(options.writerTimeoutMs / 60_000)} minutes: ` +
        'look at the global cluster in the RDS console, then run the same command again (it resumes)',
    );
  }
  out(`   ${target.clusterIdentifier} is the writer`);

  // 4. Capacity.
  out(`4. scale the ${target.role} fleet ${target.autoScalingGroupName} to ${names.fullCapacity} instances`);
  const group = async () => {
    const command = new DescribeAutoScalingGroupsCommand({
      AutoScalingGroupNames: [target.autoScalingGroupName],
    });
    call(asgName, command);
    const { AutoScalingGroups = [] } = await asg.send(command);
    if (!AutoScalingGroups[0])
      throw new FailoverError(`no Auto Scaling group ${target.autoScalingGroupName}`);
    return AutoScalingGroups[0];
  };
  const current = await group();
  if ((current.MinSize ?? 0) < names.fullCapacity || (current.DesiredCapacity ?? 0) < names.fullCapacity) {
    const command = new UpdateAutoScalingGroupCommand({
      AutoScalingGroupName: target.autoScalingGroupName,
      MinSize: Math.max(current.MinSize ?? 0, names.fullCapacity),
      DesiredCapacity: Math.max(current.DesiredCapacity ?? 0, names.fullCapacity),
    });
    call(asgName, command);
    await asg.send(command);
  }
  const capacityReached = await pollUntil(
    async () => {
      const now = await group();
      const ready = (now.Instances ?? []).filter(
        (i) => i.LifecycleState === 'InService' && i.HealthStatus === 'Healthy',
      ).length;
      out(`   ${ready} of ${names.fullCapacity} instances in service`);
      return ready >= names.fullCapacity;
    },
    { pollMs: options.pollMs, timeoutMs: options.capacityTimeoutMs },
    sleep,
  );
  if (!capacityReached) {
    warn(
      `${target.autoScalingGroupName} has fewer than ${names.fullCapacity} healthy instances after ` +
        `${Math.round(options.capacityTimeoutMs / 60_000)} minutes: DNS moves anyway (the writer is here now); ` +
        'watch the fleet (docs/runbooks/fleet-healthy-hosts.md)',
    );
  }

  // 5. DNS.
  let dns: FailoverReport['dns'] = 'not-reached';
  const primaryCheck = checks.byName.get(names.primary.regionalDomainName);
  const setPath = async (path: string): Promise<'changed' | 'unchanged' | 'failed'> => {
    if (checks.error || !primaryCheck?.Id) return 'failed';
    try {
      const get = new GetHealthCheckCommand({ HealthCheckId: primaryCheck.Id });
      call('route53', get);
      const { HealthCheck: now } = await clients.route53.send(get);
      if (now?.HealthCheckConfig?.ResourcePath === path) return 'unchanged';
      const update = new UpdateHealthCheckCommand({
        HealthCheckId: primaryCheck.Id,
        ResourcePath: path,
        HealthCheckVersion: now?.HealthCheckVersion,
      });
      call('route53', update);
      await clients.route53.send(update);
      return 'changed';
    } catch (err) {
      warn(`Route 53 refused the change: ${(err as Error).message}`);
      return 'failed';
    }
  };
  const manual = (path: string) =>
    `aws route53 update-health-check --health-check-id <id of ${names.primary.regionalDomainName}> --resource-path ${path}`;
  if (options.to === 'standby') {
    out(`5. send ${names.domainName} to the standby: the primary's health check fails by force`);
    const result = await setPath(FORCED_UNHEALTHY_PATH);
    if (result === 'failed') {
      warn(
        `the primary's health check could not be forced: DNS follows only while ${names.primary.regionalDomainName} fails ` +
          `on its own, and comes back to it when it recovers. Run this command again, or: ${manual(FORCED_UNHEALTHY_PATH)}`,
      );
    } else {
      dns = result === 'changed' ? 'forced' : 'unchanged';
      out(
        `   Route 53 answers with ${names.standby.regionalDomainName} within about ${timing.detectionSeconds} s, ` +
          `and resolvers follow within ${timing.ttlSeconds} s more (TTL)`,
      );
    }
  } else {
    out(`5. let ${names.domainName} come back to the primary`);
    const result = await setPath(READY_PATH);
    if (result === 'failed') {
      warn(`the primary's health check could not be restored: ${manual(READY_PATH)}`);
    } else {
      dns = result === 'changed' ? 'restored' : 'unchanged';
      out(
        `   Route 53 answers with ${names.primary.regionalDomainName} once ${DEFAULT_FAILURE_THRESHOLD} checks in a row ` +
          `pass (about ${timing.detectionSeconds} s), resolvers within ${timing.ttlSeconds} s more`,
      );
      const standbyAsg = clients.autoScaling(names.standby.region);
      const command = new UpdateAutoScalingGroupCommand({
        AutoScalingGroupName: names.standby.autoScalingGroupName,
        MinSize: names.standby.normalMinCapacity,
      });
      out(
        `   the standby fleet back to its warm minimum of ${names.standby.normalMinCapacity}; target tracking scales it in`,
      );
      call(`autoscaling(${names.standby.region})`, command);
      try {
        await standbyAsg.send(command);
      } catch (err) {
        warn(
          `the standby fleet kept its minimum (${(err as Error).message}); set it to ${names.standby.normalMinCapacity} later`,
        );
      }
    }
  }
  out(warnings.length ? `done, with ${warnings.length} warning(s) above` : 'done');
  return { promotion, capacityReached, dns, warnings };
}

/** Real clients, one per region, created on first use. */
function realClients(): FailoverClients & { destroy(): void } {
  const rds = new Map<string, RDSClient>();
  const asg = new Map<string, AutoScalingClient>();
  // Route 53's API is global, served from (and signed for) us-east-1.
  const route53 = new Route53Client({ region: 'us-east-1' });
  return {
    rds: (region) => rds.get(region) ?? rds.set(region, new RDSClient({ region })).get(region)!,
    autoScaling: (region) =>
      asg.get(region) ?? asg.set(region, new AutoScalingClient({ region })).get(region)!,
    route53,
    destroy() {
      for (const client of [...rds.values(), ...asg.values(), route53]) client.destroy();
    },
  };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const names = failoverNames(loadConfig(options.configPath));
  const clients = realClients();
  try {
    const report = await failover(clients, names, options, (line) => process.stdout.write(`${line}\n`));
    if (report.warnings.length > 0) process.exitCode = 2;
  } finally {
    clients.destroy();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(
      `${err instanceof FailoverError || err instanceof ConfigError ? err.message : String((err as Error).stack ?? err)}\n`,
    );
    process.exitCode = 1;
  });
}
