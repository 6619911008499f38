/**
 * docs/cost.md against the synthesized templates: every quantity the cost table derives
 * from what the app deploys (instances, NAT gateways, endpoint-AZs, alarms, KMS keys, ...)
 * must equal the count in the templates of config/default.json (production) and
 * config/lean.json (lean), each monthly figure of those rows must be its quantity times
 * its unit price, and the total must add up. A failure names the row and the cell to
 * update, and the value the templates give.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp } from '../../lib/app';
import { cdkJsonContext, ROOT, shippedConfig } from '../helpers/app';

const COST_DOC = join(ROOT, 'docs', 'cost.md');

/** Hours in the month the table assumes. */
const HOURS_PER_MONTH = 730;

/** A JSON object of a template (CloudFormation's shapes are read, not typed, here). */
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

type Profile = 'production' | 'lean';

/** The shipped config of each profile. */
const PROFILE_CONFIG: Record<Profile, 'default' | 'lean'> = { production: 'default', lean: 'lean' };

/** The templates of one profile, by role; a role the profile does not deploy is `{}`. */
interface ProfileTemplates {
  readonly primary: Json;
  readonly standby: Json;
  readonly dnsFailover: Json;
}

const ROLES = ['primary', 'standby', 'dnsFailover'] as const;

/** Synthesizes a shipped config as `cdk synth` would (Lambda bundling skipped: no resource changes). */
function synthesize(profile: Profile): ProfileTemplates {
  const app = new App({
    context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
    outdir: mkdtempSync(join(tmpdir(), `resilient-shop-cost-${profile}-`)),
  });
  const stacks = buildApp(app, shippedConfig(PROFILE_CONFIG[profile]));
  try {
    app.synth();
  } catch (err) {
    // The templates are written before the compliance packs run; their findings are
    // test/compliance.test.ts's to report.
    if (!existsSync(join(app.outdir, 'validation-report.json'))) throw err;
  }
  const template = (stack?: { templateFile: string }): Json =>
    stack ? (JSON.parse(readFileSync(join(app.outdir, stack.templateFile), 'utf8')) as Json) : {};
  return {
    primary: template(stacks.primary),
    standby: template(stacks.standby),
    dnsFailover: template(stacks.dnsFailover),
  };
}

/** The resources of a template of one type. */
function resources(template: Json, type: string): Json[] {
  return Object.values((template.Resources ?? {}) as Record<string, Json>).filter((r) => r.Type === type);
}

/** The properties of the resources of a type. */
const props = (template: Json, type: string): Json[] =>
  resources(template, type).map((r) => r.Properties ?? {});

/** vCPUs of an instance class size (`large` 2, `xlarge` 4, `4xlarge` 16). */
function vcpus(instanceClass: string): number {
  const size = instanceClass.split('.').pop() ?? '';
  if (size === 'medium' || size === 'large') return 2;
  if (size === 'xlarge') return 4;
  const n = /^(\d+)xlarge$/.exec(size);
  if (n) return Number(n[1]) * 4;
  throw new Error(`unknown instance size in ${instanceClass}`);
}

/** The Auto Scaling group's minimum (what runs at idle) and its launch template's data. */
function fleet(
  template: Json,
): { instanceType: string; count: number; volumeGb: number; monitoring: boolean }[] {
  const templates = props(template, 'AWS::EC2::LaunchTemplate').map((p) => p.LaunchTemplateData as Json);
  return props(template, 'AWS::AutoScaling::AutoScalingGroup').map((asg) => {
    if (templates.length !== 1) throw new Error(`expected one launch template, got ${templates.length}`);
    const data = templates[0];
    return {
      instanceType: data.InstanceType as string,
      count: Number(asg.MinSize),
      volumeGb: ((data.BlockDeviceMappings ?? []) as Json[]).reduce(
        (s, b) => s + Number(b.Ebs?.VolumeSize ?? 0),
        0,
      ),
      monitoring: data.Monitoring?.Enabled === true,
    };
  });
}

/** Metrics an alarm is billed for: one, or each metric a metric-math alarm reads. */
function alarmMetrics(alarm: Json): number {
  return alarm.Metrics ? (alarm.Metrics as Json[]).filter((m) => m.MetricStat).length : 1;
}

/** Whether an alarm is high resolution (a period under 60 seconds). */
function highResolution(alarm: Json): boolean {
  const periods = [alarm.Period, ...((alarm.Metrics ?? []) as Json[]).map((m) => m.MetricStat?.Period)];
  return periods.some((p) => p !== undefined && Number(p) < 60);
}

/** Monthly price of a Route 53 health check from its config (AWS endpoint). */
function healthCheckPrice(config: Json): number {
  const type = config.Type as string;
  return (
    0.5 +
    (type.startsWith('HTTPS') ? 1 : 0) +
    (type.endsWith('STR_MATCH') ? 1 : 0) +
    (Number(config.RequestInterval ?? 30) === 10 ? 1 : 0) +
    (config.MeasureLatency === true ? 1 : 0)
  );
}

/** A table row whose quantity the templates give, per stack. */
interface CountedRow {
  /** The row's first cell starts with this. */
  readonly label: string;
  /** The quantity in one template. */
  readonly count: (template: Json) => number;
  /** When the unit price follows from the templates: the price it must show. */
  readonly unitPrice?: (templates: ProfileTemplates[]) => number | undefined;
}

/** The rows whose quantity is a count of what the templates deploy. */
function countedRows(all: ProfileTemplates[]): CountedRow[] {
  const everyTemplate = all.flatMap((t) => ROLES.map((r) => t[r]));
  const instanceTypes = [...new Set(everyTemplate.flatMap((t) => fleet(t).map((f) => f.instanceType)))];
  const dbClasses = [
    ...new Set(
      everyTemplate.flatMap((t) => props(t, 'AWS::RDS::DBInstance').map((i) => i.DBInstanceClass as string)),
    ),
  ].filter((c) => c !== 'db.serverless');
  const serverless = (t: Json): number => {
    const cluster = props(t, 'AWS::RDS::DBCluster')[0];
    const instances = props(t, 'AWS::RDS::DBInstance').filter((i) => i.DBInstanceClass === 'db.serverless');
    return instances.length * Number(cluster?.ServerlessV2ScalingConfiguration?.MinCapacity ?? 0);
  };
  return [
    ...instanceTypes.map((type) => ({
      label: `web fleet: \`${type}\` instances`,
      count: (t: Json) => fleet(t).reduce((s, f) => s + (f.instanceType === type ? f.count : 0), 0),
    })),
    {
      label: 'web fleet: gp3 root volumes (GB)',
      count: (t) => fleet(t).reduce((s, f) => s + f.count * f.volumeGb, 0),
    },
    {
      label: 'web fleet: EC2 detailed monitoring',
      count: (t) => fleet(t).reduce((s, f) => s + (f.monitoring ? f.count : 0), 0),
    },
    {
      label: 'Application Load Balancer',
      count: (t) => resources(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer').length,
    },
    {
      label: 'public IPv4 addresses',
      count: (t) =>
        resources(t, 'AWS::EC2::EIP').length +
        props(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer')
          .filter((lb) => lb.Scheme === 'internet-facing')
          .reduce((s, lb) => s + ((lb.Subnets ?? lb.SubnetMappings ?? []) as unknown[]).length, 0),
    },
    { label: 'NAT gateways', count: (t) => resources(t, 'AWS::EC2::NatGateway').length },
    {
      label: 'interface endpoints (endpoint-AZs)',
      count: (t) =>
        props(t, 'AWS::EC2::VPCEndpoint')
          .filter((e) => e.VpcEndpointType === 'Interface')
          .reduce((s, e) => s + ((e.SubnetIds ?? []) as unknown[]).length, 0),
    },
    { label: 'WAF web ACLs', count: (t) => resources(t, 'AWS::WAFv2::WebACL').length },
    {
      label: 'WAF rules',
      count: (t) =>
        props(t, 'AWS::WAFv2::WebACL').reduce((s, acl) => s + ((acl.Rules ?? []) as unknown[]).length, 0),
    },
    ...dbClasses.map((cls) => ({
      label: `Aurora \`${cls}\` instances`,
      count: (t: Json) => props(t, 'AWS::RDS::DBInstance').filter((i) => i.DBInstanceClass === cls).length,
    })),
    { label: 'Aurora Serverless v2 minimum capacity (ACUs)', count: serverless },
    {
      label: 'RDS Proxy (vCPUs or ACUs behind it)',
      count: (t) => {
        if (resources(t, 'AWS::RDS::DBProxy').length === 0) return 0;
        const provisioned = props(t, 'AWS::RDS::DBInstance')
          .filter((i) => i.DBInstanceClass !== 'db.serverless')
          .reduce((s, i) => s + vcpus(i.DBInstanceClass as string), 0);
        // Billed for at least 2 vCPUs, or at least 8 ACUs in front of Serverless v2.
        return serverless(t) > 0 ? Math.max(8, serverless(t)) : Math.max(2, provisioned);
      },
    },
    { label: 'KMS keys', count: (t) => resources(t, 'AWS::KMS::Key').length },
    {
      label: 'Secrets Manager secrets (replicas count)',
      count: (t) =>
        props(t, 'AWS::SecretsManager::Secret').reduce(
          (s, p) => s + 1 + ((p.ReplicaRegions ?? []) as unknown[]).length,
          0,
        ),
    },
    {
      label: 'CloudWatch alarms, standard (alarm metrics)',
      count: (t) =>
        props(t, 'AWS::CloudWatch::Alarm')
          .filter((a) => !highResolution(a))
          .reduce((s, a) => s + alarmMetrics(a), 0),
    },
    {
      label: 'CloudWatch alarms, high resolution (alarm metrics)',
      count: (t) =>
        props(t, 'AWS::CloudWatch::Alarm')
          .filter(highResolution)
          .reduce((s, a) => s + alarmMetrics(a), 0),
    },
    {
      label: 'CloudWatch composite alarms',
      count: (t) => resources(t, 'AWS::CloudWatch::CompositeAlarm').length,
    },
    { label: 'CloudWatch dashboards', count: (t) => resources(t, 'AWS::CloudWatch::Dashboard').length },
    {
      label: 'Route 53 health checks',
      count: (t) => resources(t, 'AWS::Route53::HealthCheck').length,
      unitPrice: (templates) => {
        const prices = [
          ...new Set(
            templates.flatMap((p) =>
              ROLES.flatMap((r) =>
                props(p[r], 'AWS::Route53::HealthCheck').map((h) => healthCheckPrice(h.HealthCheckConfig)),
              ),
            ),
          ),
        ];
        if (prices.length > 1) throw new Error(`health checks of different prices: ${prices.join(', ')}`);
        return prices[0];
      },
    },
    { label: 'CloudTrail trails', count: (t) => resources(t, 'AWS::CloudTrail::Trail').length },
    {
      label: 'ARC zonal autoshift',
      count: (t) => resources(t, 'AWS::ARCZonalShift::ZonalAutoshiftConfiguration').length,
    },
  ];
}

/** One row of the cost table. */
interface TableRow {
  readonly line: string;
  readonly item: string;
  readonly unit: string;
  readonly quantity: Record<Profile, string>;
  readonly monthly: Record<Profile, string>;
}

/** The first table under `## Monthly cost at idle`, header and separator dropped. */
function costTable(markdown: string): TableRow[] {
  const section = markdown.split(/^## /m).find((s) => s.startsWith('Monthly cost at idle'));
  if (section === undefined) throw new Error('docs/cost.md has no "## Monthly cost at idle" section');
  const lines = section.split('\n');
  const start = lines.findIndex((l) => l.startsWith('|'));
  const table = lines.slice(
    start,
    lines.findIndex((l, i) => i > start && !l.startsWith('|')),
  );
  return table.slice(2).map((line) => {
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((c) => c.trim());
    if (cells.length !== 6)
      throw new Error(`docs/cost.md: a row of the cost table has ${cells.length} cells: ${line}`);
    const [item, unit, productionQuantity, productionMonthly, leanQuantity, leanMonthly] = cells;
    return {
      line,
      item,
      unit,
      quantity: { production: productionQuantity, lean: leanQuantity },
      monthly: { production: productionMonthly, lean: leanMonthly },
    };
  });
}

/** A money cell: `$1,234.56` or `—` (nothing). */
function money(cell: string, where: string): number {
  if (cell === '—') return 0;
  const m = /^\$([\d,]+\.\d\d)$/.exec(cell);
  if (!m) throw new Error(`${where}: "${cell}" is not a monthly figure like $12.34 or —`);
  return Number(m[1].replace(/,/g, ''));
}

/** A unit price cell: `$0.045/h ...` or `$1.00/month ...`, as a monthly price. */
function unitMonthly(cell: string, where: string): { price: number; monthly: number } {
  const m = /^\$([\d.]+)\/(h|month)\b/.exec(cell);
  if (!m) throw new Error(`${where}: unit price "${cell}" must start with $<price>/h or $<price>/month`);
  const price = Number(m[1]);
  return { price, monthly: m[2] === 'h' ? price * HOURS_PER_MONTH : price };
}

/** The quantity cell the templates call for: `primary + standby + DNS` in production. */
function expectedQuantity(profile: Profile, counts: Record<(typeof ROLES)[number], number>): string {
  const total = counts.primary + counts.standby + counts.dnsFailover;
  if (total === 0) return '—';
  return profile === 'production'
    ? `${counts.primary} + ${counts.standby} + ${counts.dnsFailover}`
    : `${counts.primary}`;
}

const round = (n: number): number => Math.round(n * 100) / 100;

describe('docs/cost.md', () => {
  // Built once: the templates of both shipped configs.
  let templates: Record<Profile, ProfileTemplates>;
  let rows: TableRow[];
  let counted: CountedRow[];
  beforeAll(() => {
    templates = { production: synthesize('production'), lean: synthesize('lean') };
    rows = costTable(readFileSync(COST_DOC, 'utf8'));
    counted = countedRows([templates.production, templates.lean]);
  }, 600_000);

  /** The table row of a counted row, or a line saying it is missing. */
  const findRow = (label: string): TableRow | string =>
    rows.find((r) => r.item.startsWith(label)) ??
    `the cost table has no row starting "${label}": the templates deploy it, add the row`;

  test('the table is dated and states its assumptions', () => {
    const doc = readFileSync(COST_DOC, 'utf8');
    expect(doc).toMatch(/Prices as of \d{4}-\d{2}-\d{2}/);
    expect(doc).toContain(`${HOURS_PER_MONTH} hours`);
    expect(rows.length).toBeGreaterThan(counted.length);
  });

  test('every quantity counted from the templates is the one in the table', () => {
    const wrong: string[] = [];
    for (const row of counted) {
      const tableRow = findRow(row.label);
      if (typeof tableRow === 'string') {
        wrong.push(tableRow);
        continue;
      }
      for (const profile of ['production', 'lean'] as const) {
        const counts = {
          primary: row.count(templates[profile].primary),
          standby: row.count(templates[profile].standby),
          dnsFailover: row.count(templates[profile].dnsFailover),
        };
        const expected = expectedQuantity(profile, counts);
        const cell = tableRow.quantity[profile];
        const matches =
          expected === '—'
            ? cell === '—'
            : cell.startsWith(expected) && !/^[\d.]/.test(cell.slice(expected.length));
        if (!matches) {
          wrong.push(
            `row "${row.label}", ${profile} quantity: the templates have ${expected}` +
              `${profile === 'production' ? ' (primary + standby + DNS failover)' : ''}, the table says "${cell}"`,
          );
        }
      }
    }
    if (wrong.length > 0) {
      throw new Error(
        `docs/cost.md is behind the templates: update these cells and their monthly figures:\n${wrong.join('\n')}`,
      );
    }
  });

  test('a counted row costs its quantity times its unit price', () => {
    const wrong: string[] = [];
    for (const row of counted) {
      const tableRow = findRow(row.label);
      if (typeof tableRow === 'string') {
        wrong.push(tableRow);
        continue;
      }
      const unit = unitMonthly(tableRow.unit, `row "${row.label}"`);
      const expectedUnit = row.unitPrice?.([templates.production, templates.lean]);
      if (expectedUnit !== undefined && Math.abs(unit.price - expectedUnit) > 1e-9) {
        wrong.push(
          `row "${row.label}", unit price: the templates' configuration costs $${expectedUnit.toFixed(2)}, the table says ${tableRow.unit}`,
        );
      }
      for (const profile of ['production', 'lean'] as const) {
        const quantity = ROLES.reduce((s, r) => s + row.count(templates[profile][r]), 0);
        const expected = round(quantity * unit.monthly);
        const actual = money(tableRow.monthly[profile], `row "${row.label}", ${profile}`);
        if (Math.abs(actual - expected) > 0.011) {
          const per = unit.monthly === unit.price ? '/month' : `/h x ${HOURS_PER_MONTH}`;
          wrong.push(
            `row "${row.label}", ${profile} monthly: ${quantity} x $${unit.price}${per} = $${expected.toFixed(2)}, the table says ${tableRow.monthly[profile]}`,
          );
        }
      }
    }
    if (wrong.length > 0) throw new Error(`docs/cost.md: update these cells:\n${wrong.join('\n')}`);
  });

  test('the total is the sum of the rows', () => {
    const total = rows.find((r) => /^\*\*total/.test(r.item));
    if (total === undefined) throw new Error('docs/cost.md: the cost table has no **total** row');
    const others = rows.filter((r) => r !== total);
    for (const profile of ['production', 'lean'] as const) {
      const sum = round(
        others.reduce((s, r) => s + money(r.monthly[profile], `row "${r.item}", ${profile}`), 0),
      );
      const stated = money(total.monthly[profile].replace(/\*\*/g, ''), `total, ${profile}`);
      if (Math.abs(sum - stated) > 0.011) {
        throw new Error(
          `docs/cost.md: the ${profile} total says $${stated.toFixed(2)}, the rows add up to $${sum.toFixed(2)}`,
        );
      }
    }
  });

  test('the quantity parser cannot be fooled by a longer number', () => {
    // "3 + 2 + 0" must not accept "3 + 2 + 07" or "13 + 2 + 0".
    const expected = expectedQuantity('production', { primary: 3, standby: 2, dnsFailover: 0 });
    expect(expected).toBe('3 + 2 + 0');
    const accepts = (cell: string): boolean =>
      cell.startsWith(expected) && !/^[\d.]/.test(cell.slice(expected.length));
    expect(accepts('3 + 2 + 0 instances')).toBe(true);
    expect(accepts('3 + 2 + 07')).toBe(false);
    expect(accepts('13 + 2 + 0')).toBe(false);
    expect(expectedQuantity('lean', { primary: 0, standby: 0, dnsFailover: 0 })).toBe('—');
  });
});
