/**
 * Prints the DNS failover time of a synthesized app: how long after the primary stops
 * answering `/health/ready` a client that resolves the public name again is sent to the
 * standby.
 *
 *   npm run synth && npm run failover:time [-- <cloud assembly directory, default cdk.out>]
 *
 * Read from the templates, not from the code: the PRIMARY failover record, its health
 * check's request interval and failure threshold (Route 53's defaults, 30 s and 3, where
 * the template leaves them out), and the TTL resolvers cache the answer for. The records
 * are aliases, which have no TTL of their own: the script follows the alias to the record
 * it names and, when that one is an alias to a load balancer, takes the TTL Route 53
 * fixes for those ({@link LOAD_BALANCER_ALIAS_TTL}). docs/failover.md quotes the line it
 * prints, and a test keeps the two equal.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FailoverTiming, LOAD_BALANCER_ALIAS_TTL, failoverTiming } from '../lib/constructs/failover-dns';

/** A CloudFormation template, as far as this script reads it. */
interface Template {
  readonly Resources?: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** The failover time of one failover name, with where each number came from. */
export interface FailoverTimeReport extends FailoverTiming {
  /** The public name (no trailing dot). */
  readonly name: string;
  /** The primary's health check: what it calls, every how many seconds, failing after how many. */
  readonly healthCheck: {
    readonly fqdn: string;
    readonly intervalSeconds: number;
    readonly failureThreshold: number;
  };
  /** Where the TTL comes from. */
  readonly ttlSource: string;
}

/** The stack templates of a cloud assembly, by stack name. */
export function readCloudAssembly(dir: string): Record<string, Template> {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    artifacts?: Record<string, { type: string; properties?: { templateFile?: string } }>;
  };
  const templates: Record<string, Template> = {};
  for (const [name, artifact] of Object.entries(manifest.artifacts ?? {})) {
    if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
    templates[name] = JSON.parse(
      readFileSync(join(dir, artifact.properties.templateFile), 'utf8'),
    ) as Template;
  }
  return templates;
}

const withoutDot = (name: string): string => name.replace(/\.$/, '');

type Resource = { Type: string; Properties?: Record<string, unknown> };

/** Every resource of every template, with the template it is in. */
function resources(templates: Record<string, Template>): { stack: string; id: string; resource: Resource }[] {
  return Object.entries(templates).flatMap(([stack, template]) =>
    Object.entries(template.Resources ?? {}).map(([id, resource]) => ({ stack, id, resource })),
  );
}

/** Seconds resolvers may cache a record: its TTL, or, for an alias, the TTL of what it aliases. */
function ttlOf(
  templates: Record<string, Template>,
  record: Record<string, unknown>,
  seen: string[] = [],
): { seconds: number; source: string } {
  const name = withoutDot(String(record.Name));
  if (record.TTL !== undefined) return { seconds: Number(record.TTL), source: `the TTL of ${name}` };
  const alias = record.AliasTarget as { DNSName?: unknown; HostedZoneId?: unknown } | undefined;
  if (!alias) throw new Error(`${name} has neither a TTL nor an alias target`);
  const hostedZone = alias.HostedZoneId as { 'Fn::GetAtt'?: [string, string] } | undefined;
  if (hostedZone?.['Fn::GetAtt']?.[1] === 'CanonicalHostedZoneID') {
    return {
      seconds: LOAD_BALANCER_ALIAS_TTL.toSeconds(),
      source: `${name} is an alias to a load balancer, whose TTL Route 53 fixes`,
    };
  }
  if (typeof alias.DNSName !== 'string') {
    throw new Error(`${name} aliases a name the template computes at deploy time; its TTL cannot be read`);
  }
  const target = withoutDot(alias.DNSName);
  if (seen.includes(target)) throw new Error(`alias loop: ${[...seen, target].join(' -> ')}`);
  const next = resources(templates).find(
    ({ resource }) =>
      resource.Type === 'AWS::Route53::RecordSet' &&
      withoutDot(String(resource.Properties?.Name)) === target &&
      resource.Properties?.HostedZoneId === alias.HostedZoneId &&
      resource.Properties?.Failover === undefined,
  );
  if (!next) throw new Error(`${name} aliases ${target}, which no template of the assembly defines`);
  const inner = ttlOf(templates, next.resource.Properties!, [...seen, name]);
  return { seconds: inner.seconds, source: `${name} aliases ${target}; ${inner.source}` };
}

/**
 * The failover time of the (single) PRIMARY failover record of the templates.
 *
 * @throws Error when there is no failover record, or more than one, or a TTL cannot be read
 */
export function failoverTimeOf(templates: Record<string, Template>): FailoverTimeReport {
  const all = resources(templates);
  const primaries = all.filter(
    ({ resource }) =>
      resource.Type === 'AWS::Route53::RecordSet' && resource.Properties?.Failover === 'PRIMARY',
  );
  if (primaries.length !== 1) {
    throw new Error(`expected one PRIMARY failover record in the templates, found ${primaries.length}`);
  }
  const { stack, resource } = primaries[0];
  const record = resource.Properties!;
  const ref = (record.HealthCheckId as { Ref?: string } | undefined)?.Ref;
  const check = ref ? templates[stack].Resources?.[ref] : undefined;
  if (!check || check.Type !== 'AWS::Route53::HealthCheck') {
    throw new Error(`the PRIMARY record of ${String(record.Name)} has no health check of its own stack`);
  }
  const config = check.Properties!.HealthCheckConfig as Record<string, unknown>;
  const intervalSeconds = Number(config.RequestInterval ?? 30);
  const failureThreshold = Number(config.FailureThreshold ?? 3);
  const ttl = ttlOf(templates, record);
  return {
    name: withoutDot(String(record.Name)),
    healthCheck: { fqdn: String(config.FullyQualifiedDomainName), intervalSeconds, failureThreshold },
    ttlSource: ttl.source,
    ...failoverTiming(intervalSeconds, failureThreshold, ttl.seconds),
  };
}

/** The line the script prints, and docs/failover.md quotes. */
export function formatFailoverTime(report: FailoverTimeReport): string {
  return (
    `failover time of ${report.name}: ${report.healthCheck.intervalSeconds} s x ${report.healthCheck.failureThreshold} failures ` +
    `+ ${report.ttlSeconds} s TTL = ${report.totalSeconds} s`
  );
}

if (require.main === module) {
  const dir = process.argv[2] ?? 'cdk.out';
  try {
    const report = failoverTimeOf(readCloudAssembly(dir));
    process.stdout.write(`${formatFailoverTime(report)}\n`);
    process.stdout.write(`  health check: https://${report.healthCheck.fqdn} (the primary)\n`);
    process.stdout.write(`  TTL: ${report.ttlSource}\n`);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
