import { readFileSync } from 'node:fs';
import { z } from 'zod';

/**
 * Deployment profile.
 *
 * - `production`: three AZs, a NAT gateway per AZ, interface endpoints, a reader
 *   instance, WAF and a warm standby region.
 * - `lean`: the cheapest shape that still synthesizes cleanly (two AZs, one NAT
 *   gateway, no interface endpoints). Its single points of failure are listed in
 *   the README.
 */
export type Profile = 'production' | 'lean';

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;
const AZ = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d[a-z]$/;
const INSTANCE_TYPE = /^[a-z][a-z0-9-]*\d[a-z0-9-]*\.[a-z0-9]+$/;
const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;
/** Graviton families: a `g` after the generation digit (`m7g`, `c7gn`, `t4g`, `r8g`). */
const GRAVITON_FAMILY = /^[a-z]+\d+g[a-z]*\./;

const cidrPrefix = (cidr: string): number => Number(cidr.split('/')[1]);

const regionSchema = z
  .strictObject({
    region: z.string().regex(REGION, 'must be an AWS region code such as "us-east-1"'),
    availabilityZones: z
      .array(z.string().regex(AZ, 'must be an AZ name such as "us-east-1a"'))
      .length(3, 'must list exactly three AZ names of the region (no lookups at synth)'),
    vpcCidr: z
      .cidrv4('must be an IPv4 CIDR such as "10.10.0.0/16"')
      .refine((c) => cidrPrefix(c) >= 16 && cidrPrefix(c) <= 20, {
        message: 'must be a /16 to /20 block: the subnets need room in three AZs',
      }),
  })
  .superRefine((region, ctx) => {
    if (!REGION.test(region.region)) return; // already reported; AZ checks would only echo it
    region.availabilityZones.forEach((az, i) => {
      if (!az.startsWith(region.region) || az.length !== region.region.length + 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['availabilityZones', i],
          message: `"${az}" is not an AZ of ${region.region}: use names like "${region.region}a"`,
        });
      }
    });
    if (new Set(region.availabilityZones).size !== region.availabilityZones.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['availabilityZones'],
        message: 'must be three different AZs: a repeated AZ is a single point of failure',
      });
    }
  });

const databaseSchema = z.strictObject({
  engineVersion: z
    .string()
    .regex(/^\d+\.\d+$/, 'must be an Aurora PostgreSQL major.minor version such as "16.8"')
    .default('16.8'),
  instanceType: z
    .string()
    .regex(INSTANCE_TYPE, 'must be an instance type without the "db." prefix, such as "r7g.large"'),
  readers: z
    .number()
    .int('must be a whole number')
    .min(0, 'must be 0 or more (production needs at least 1 for automatic failover)')
    .max(15, 'must be at most 15 (Aurora allows 15 readers)'),
  backupRetentionDays: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1 day (Aurora keeps automated backups for 1 to 35 days)')
    .max(35, 'must be at most 35 days (the Aurora maximum)'),
});

const computeSchema = z.strictObject({
  instanceType: z
    .string()
    .regex(INSTANCE_TYPE, 'must be an EC2 instance type such as "m7g.large"')
    .refine((t) => GRAVITON_FAMILY.test(t), {
      message:
        'must be a Graviton (arm64) type such as "m7g.large" or "t4g.small": the fleet runs Amazon Linux 2023 for arm64',
    }),
  minCapacity: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  maxCapacity: z.number().int('must be a whole number').min(1, 'must be at least 1'),
  standbyMinCapacity: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1 (a warm standby keeps an instance running)')
    .optional(),
});

/** AWS Secrets Manager secret names: 1-512 of letters, digits and /_+=.@- (no ARN). */
const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;

const httpsUrl = (what: string) =>
  z.url({ protocol: /^https$/, error: `must be the https:// URL of the ${what}` });

const serviceSchema = z
  .strictObject({
    sandbox: z.boolean('must be true (run the bundled fakes, never for production) or false'),
    paymentGateway: z
      .strictObject({
        url: httpsUrl('payment gateway, such as "https://api.payments.example.com"'),
        apiKeySecretName: z
          .string()
          .regex(
            SECRET_NAME,
            'must be the name (not the ARN) of a Secrets Manager secret holding the API key, such as "resilient-shop/payment-gateway"',
          ),
      })
      .optional(),
    recommendationsUrl: httpsUrl('recommendation engine').optional(),
    logLevel: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace'], 'must be a pino level such as "info"')
      .default('info'),
  })
  .superRefine((service, ctx) => {
    if (service.sandbox) return;
    if (!service.paymentGateway) {
      ctx.addIssue({
        code: 'custom',
        path: ['paymentGateway'],
        message: 'is required unless sandbox is true: { url, apiKeySecretName } of the real payment gateway',
      });
    }
    if (!service.recommendationsUrl) {
      ctx.addIssue({
        code: 'custom',
        path: ['recommendationsUrl'],
        message: 'is required unless sandbox is true: the https:// URL of the recommendation engine',
      });
    }
  });

const wafSchema = z.strictObject({
  ipRateLimit: z
    .number()
    .int('must be a whole number')
    .min(10, 'must be at least 10 (the smallest limit AWS WAF accepts)')
    .max(2_000_000_000, 'must be at most 2000000000 (the largest limit AWS WAF accepts)'),
});

/** The JSON schema of a deployment config file, with cross-field rules. */
export const configSchema = z
  .strictObject({
    appName: z
      .string()
      .regex(
        /^[a-z][a-z0-9-]{1,30}$/,
        'must be 2-31 lowercase letters, digits or dashes, starting with a letter',
      ),
    environment: z.string().min(1, 'must name the environment, such as "prod"'),
    owner: z.string().min(1, 'must name the owning team, used as the "owner" tag'),
    account: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id, as a string'),
    profile: z.enum(['production', 'lean'], 'must be "production" or "lean"'),
    primary: regionSchema,
    standby: regionSchema.optional(),
    domainName: z.string().regex(HOSTNAME, 'must be a lowercase DNS name such as "shop.example.com"'),
    hostedZone: z.strictObject({
      id: z
        .string()
        .regex(/^Z[A-Z0-9]{1,32}$/, 'must be a Route 53 hosted zone id such as "Z0123456789ABCDEFGHIJ"'),
      name: z.string().regex(HOSTNAME, 'must be the zone\'s DNS name such as "example.com"'),
    }),
    alarmEmail: z.email('must be an e-mail address for alarm notifications'),
    allowedIngressCidrs: z
      .array(z.union([z.cidrv4(), z.cidrv6()], 'must be an IPv4 or IPv6 CIDR such as "203.0.113.0/24"'))
      .min(1, 'must list at least one CIDR allowed to reach the load balancer'),
    ports: z.strictObject({
      app: z
        .number()
        .int('must be a whole number')
        .min(1024, 'must be 1024-65535 (the service runs unprivileged)')
        .max(65535, 'must be 1024-65535 (the service runs unprivileged)'),
      database: z
        .number()
        .int('must be a whole number')
        .min(1150, 'must be 1150-65535 (the range Aurora accepts)')
        .max(65535, 'must be 1150-65535 (the range Aurora accepts)')
        .refine((p) => p !== 5432, {
          message: 'must not be 5432: use a non-default port so scans for PostgreSQL miss it',
        }),
    }),
    compute: computeSchema,
    database: databaseSchema,
    service: serviceSchema,
    waf: wafSchema.default({ ipRateLimit: 2_000 }),
    /**
     * A multi-region CloudTrail trail of the account's management events, in the primary
     * stack (lib/constructs/audit-trail.ts). `false` where an organization trail already
     * records them: a second copy of management events costs $2 per 100,000.
     */
    auditTrail: z
      .boolean('must be true (deploy the audit trail) or false (an organization trail exists)')
      .default(true),
  })
  .superRefine((cfg, ctx) => {
    if (cfg.profile === 'production' && !cfg.standby) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby'],
        message: 'is required by the production profile (warm standby region); use profile "lean" to omit it',
      });
    }
    if (cfg.standby && cfg.standby.region === cfg.primary.region) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'region'],
        message: `must differ from primary.region (${cfg.primary.region}): a standby in the same region survives no regional outage`,
      });
    }
    if (cfg.standby && cfg.standby.vpcCidr === cfg.primary.vpcCidr) {
      ctx.addIssue({
        code: 'custom',
        path: ['standby', 'vpcCidr'],
        message: 'must differ from primary.vpcCidr so the two VPCs can be peered or routed later',
      });
    }
    if (cfg.domainName !== cfg.hostedZone.name && !cfg.domainName.endsWith(`.${cfg.hostedZone.name}`)) {
      ctx.addIssue({
        code: 'custom',
        path: ['domainName'],
        message: `"${cfg.domainName}" is not inside hosted zone "${cfg.hostedZone.name}"`,
      });
    }
    if (cfg.compute.maxCapacity < cfg.compute.minCapacity) {
      ctx.addIssue({
        code: 'custom',
        path: ['compute', 'maxCapacity'],
        message: `must be at least compute.minCapacity (${cfg.compute.minCapacity})`,
      });
    }
    if (
      cfg.compute.standbyMinCapacity !== undefined &&
      cfg.compute.maxCapacity >= cfg.compute.minCapacity && // else reported above; this would echo it
      cfg.compute.standbyMinCapacity > cfg.compute.maxCapacity
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['compute', 'standbyMinCapacity'],
        message: `must be at most compute.maxCapacity (${cfg.compute.maxCapacity})`,
      });
    }
    if (cfg.profile === 'production' && cfg.service.sandbox) {
      ctx.addIssue({
        code: 'custom',
        path: ['service', 'sandbox'],
        message:
          'must be false in production: the sandbox runs a fake payment gateway that approves every charge',
      });
    }
    if (cfg.profile === 'production' && cfg.database.readers === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['database', 'readers'],
        message:
          'must be at least 1 in production: without a reader in another AZ there is no automatic failover',
      });
    }
  });

/** A validated deployment config. */
export type AppConfig = z.infer<typeof configSchema>;
/** One region's part of the config. */
export type RegionConfig = z.infer<typeof regionSchema>;

/** Thrown when a config file is missing, is not JSON, or fails validation. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(
      `Invalid config ${source} (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n` +
        problems.map((p) => `  - ${p}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => {
    if (typeof key === 'number') return `${acc}[${key}]`;
    return acc ? `${acc}.${String(key)}` : String(key);
  }, '');
}

/**
 * Validates an already-parsed config object.
 *
 * @param raw the parsed JSON
 * @param source where it came from, for the error message
 * @throws ConfigError listing one line per bad field, each naming the field and the fix
 */
export function parseConfig(raw: unknown, source = 'config'): AppConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return result.data;
  // One message per field: zod keeps checking a field after its first failure, and
  // the later messages (a CIDR's size after its syntax) only repeat the first.
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const issue of result.error.issues) {
    const where = formatPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const fields = issue.keys.map((k) => (where ? `${where}.${k}` : k)).join(', ');
      problems.push(
        `${fields}: unknown field${issue.keys.length > 1 ? 's' : ''}; remove or fix the spelling`,
      );
      continue;
    }
    const field = where || '(top level)';
    if (seen.has(field)) continue;
    seen.add(field);
    if (issue.code === 'invalid_type' && issue.input === undefined) {
      problems.push(`${field}: is required but missing`);
    } else if (issue.code === 'invalid_type' && issue.expected !== 'int') {
      const got = Array.isArray(issue.input) ? 'array' : issue.input === null ? 'null' : typeof issue.input;
      problems.push(
        `${field}: must be ${issue.expected === 'object' ? 'an' : 'a'} ${issue.expected} (got ${got})`,
      );
    } else {
      problems.push(`${field}: ${issue.message}`);
    }
  }
  throw new ConfigError(source, problems);
}

/**
 * Reads and validates a config file.
 *
 * @throws ConfigError when the file cannot be read, is not JSON, or is invalid
 */
export function loadConfig(path: string): AppConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(path, [`is not valid JSON: ${(err as Error).message}`]);
  }
  return parseConfig(raw, path);
}

/** The AZs a region's stack spans: three in production, the first two in lean. */
export function activeAzs(config: AppConfig, region: RegionConfig): string[] {
  return config.profile === 'production'
    ? [...region.availabilityZones]
    : region.availabilityZones.slice(0, 2);
}
