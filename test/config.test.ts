import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, activeAzs, loadConfig, parseConfig } from '../lib/config';
import { rawConfig } from './helpers/app';

type Raw = Record<string, unknown>;

/** Parses a shipped config with one change applied; returns the problem lines. */
function problemsOf(change: (raw: Raw) => void, base: 'default' | 'lean' = 'default'): string[] {
  const raw = rawConfig(base);
  change(raw);
  try {
    parseConfig(raw, 'test.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).problems];
  }
  throw new Error('expected the config to be rejected');
}

const primary = (raw: Raw) => raw.primary as Raw;

describe('config', () => {
  test('the shipped configs are valid', () => {
    // GIVEN the files in config/ WHEN loaded THEN both profiles parse
    expect(loadConfig('config/default.json').profile).toBe('production');
    expect(loadConfig('config/lean.json').profile).toBe('lean');
  });

  test.each<[string, (raw: Raw) => void, RegExp]>([
    ['a missing field', (r) => delete r.alarmEmail, /^alarmEmail: is required but missing$/],
    [
      'an unknown field',
      (r) => (r.alarmEmial = 'x@example.com'),
      /^alarmEmial: unknown field; remove or fix the spelling$/,
    ],
    ['a nested unknown field', (r) => (primary(r).azs = []), /^primary\.azs: unknown field/],
    [
      'a non-boolean auditTrail',
      (r) => (r.auditTrail = 'no'),
      /^auditTrail: must be a boolean \(got string\)$/,
    ],
    [
      'a number where a string belongs',
      (r) => (r.account = 111111111111),
      /^account: must be a string \(got number\)$/,
    ],
    ['a short account id', (r) => (r.account = '1234'), /^account: must be a 12-digit AWS account id/],
    ['an unknown profile', (r) => (r.profile = 'prod'), /^profile: must be "production" or "lean"$/],
    [
      'a bad region code',
      (r) => (primary(r).region = 'virginia'),
      /^primary\.region: must be an AWS region code/,
    ],
    [
      'two AZs',
      (r) => (primary(r).availabilityZones = ['us-east-1a', 'us-east-1b']),
      /^primary\.availabilityZones: must list exactly three AZ names/,
    ],
    [
      'an AZ of another region',
      (r) => (primary(r).availabilityZones = ['us-east-1a', 'us-west-2b', 'us-east-1c']),
      /^primary\.availabilityZones\[1\]: "us-west-2b" is not an AZ of us-east-1/,
    ],
    [
      'a repeated AZ',
      (r) => (primary(r).availabilityZones = ['us-east-1a', 'us-east-1a', 'us-east-1c']),
      /^primary\.availabilityZones: must be three different AZs/,
    ],
    ['a malformed CIDR', (r) => (primary(r).vpcCidr = '10.0.0.0'), /^primary\.vpcCidr: must be an IPv4 CIDR/],
    [
      'a VPC CIDR too large',
      (r) => (primary(r).vpcCidr = '10.0.0.0/8'),
      /^primary\.vpcCidr: must be a \/16 to \/20 block/,
    ],
    [
      'the same CIDR in both regions',
      (r) => ((r.standby as Raw).vpcCidr = primary(r).vpcCidr),
      /^standby\.vpcCidr: must differ from primary\.vpcCidr/,
    ],
    [
      'a standby in the primary region',
      (r) => (r.standby = { ...primary(r), vpcCidr: '10.99.0.0/16' }),
      /^standby\.region: must differ from primary\.region \(us-east-1\)/,
    ],
    [
      'production without a standby',
      (r) => delete r.standby,
      /^standby: is required by the production profile/,
    ],
    [
      'a bad ingress CIDR',
      (r) => (r.allowedIngressCidrs = ['0.0.0.0']),
      /^allowedIngressCidrs\[0\]: must be an IPv4 or IPv6 CIDR/,
    ],
    [
      'no ingress CIDR',
      (r) => (r.allowedIngressCidrs = []),
      /^allowedIngressCidrs: must list at least one CIDR/,
    ],
    ['a bad e-mail', (r) => (r.alarmEmail = 'oncall'), /^alarmEmail: must be an e-mail address/],
    [
      'an upper-case domain',
      (r) => (r.domainName = 'Shop.Example.com'),
      /^domainName: must be a lowercase DNS name/,
    ],
    [
      'a domain outside the zone',
      (r) => (r.domainName = 'shop.example.org'),
      /^domainName: "shop\.example\.org" is not inside hosted zone "example\.com"$/,
    ],
    [
      'a bad hosted zone id',
      (r) => ((r.hostedZone as Raw).id = 'example.com'),
      /^hostedZone\.id: must be a Route 53 hosted zone id/,
    ],
    [
      'the PostgreSQL default port',
      (r) => ((r.ports as Raw).database = 5432),
      /^ports\.database: must not be 5432/,
    ],
    [
      'a database port Aurora refuses',
      (r) => ((r.ports as Raw).database = 80),
      /^ports\.database: must be 1150-65535/,
    ],
    ['a privileged app port', (r) => ((r.ports as Raw).app = 443), /^ports\.app: must be 1024-65535/],
    ['a fractional port', (r) => ((r.ports as Raw).app = 8080.5), /^ports\.app: must be a whole number$/],
    [
      'a bad instance type',
      (r) => ((r.compute as Raw).instanceType = 'large'),
      /^compute\.instanceType: must be an EC2 instance type/,
    ],
    [
      'max below min capacity',
      (r) => ((r.compute as Raw).maxCapacity = 1),
      /^compute\.maxCapacity: must be at least compute\.minCapacity \(3\)$/,
    ],
    [
      'an x86 instance type for the Graviton fleet',
      (r) => ((r.compute as Raw).instanceType = 'm7i.large'),
      /^compute\.instanceType: must be a Graviton \(arm64\) type/,
    ],
    [
      'a standby minimum above the maximum',
      (r) => ((r.compute as Raw).standbyMinCapacity = 13),
      /^compute\.standbyMinCapacity: must be at most compute\.maxCapacity \(12\)$/,
    ],
    [
      'the sandbox in production',
      (r) => ((r.service as Raw).sandbox = true),
      /^service\.sandbox: must be false in production: the sandbox runs a fake payment gateway/,
    ],
    [
      'no payment gateway without the sandbox',
      (r) => delete (r.service as Raw).paymentGateway,
      /^service\.paymentGateway: is required unless sandbox is true/,
    ],
    [
      'a plain-http payment gateway',
      (r) => (((r.service as Raw).paymentGateway as Raw).url = 'http://api.payments.example.com'),
      /^service\.paymentGateway\.url: must be the https:\/\/ URL of the payment gateway/,
    ],
    [
      'a secret ARN where its name belongs',
      (r) =>
        (((r.service as Raw).paymentGateway as Raw).apiKeySecretName =
          'arn:aws:secretsmanager:us-east-1:111111111111:secret:gateway-AbCdEf'),
      /^service\.paymentGateway\.apiKeySecretName: must be the name \(not the ARN\)/,
    ],
    [
      'a WAF rate limit AWS WAF refuses',
      (r) => ((r.waf as Raw).ipRateLimit = 5),
      /^waf\.ipRateLimit: must be at least 10/,
    ],
    [
      'a db.-prefixed instance type',
      (r) => ((r.database as Raw).instanceType = 'db.r7g.large'),
      /^database\.instanceType: must be an instance type without the "db\." prefix/,
    ],
    ['negative readers', (r) => ((r.database as Raw).readers = -1), /^database\.readers: must be 0 or more/],
    [
      'no reader in production',
      (r) => ((r.database as Raw).readers = 0),
      /^database\.readers: must be at least 1 in production/,
    ],
    [
      'backup retention 0',
      (r) => ((r.database as Raw).backupRetentionDays = 0),
      /^database\.backupRetentionDays: must be at least 1 day/,
    ],
    [
      'backup retention over 35',
      (r) => ((r.database as Raw).backupRetentionDays = 36),
      /^database\.backupRetentionDays: must be at most 35 days/,
    ],
  ])('rejects %s with a message naming the field and the fix', (_name, change, expected) => {
    // GIVEN a valid config with one bad value WHEN parsed THEN exactly that field is reported
    const problems = problemsOf(change);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  test('reports every bad field at once, one line each', () => {
    // GIVEN three independent mistakes
    const problems = problemsOf((r) => {
      r.account = 'abc';
      delete r.owner;
      (r.ports as Raw).database = 5432;
    });
    // THEN all three are named, none twice
    expect(problems).toEqual([
      expect.stringMatching(/^owner: is required but missing$/),
      expect.stringMatching(/^account: /),
      expect.stringMatching(/^ports\.database: /),
    ]);
  });

  test('the lean profile runs the sandbox and needs no gateway; WAF has a default rate limit', () => {
    const raw = rawConfig('lean');
    expect(raw.service).toEqual({ sandbox: true });
    delete raw.waf;
    const config = parseConfig(raw);
    expect(config.service).toMatchObject({ sandbox: true, logLevel: 'info' });
    expect(config.waf).toEqual({ ipRateLimit: 2000 });
  });

  test('the lean profile may omit the standby region', () => {
    const raw = rawConfig('lean');
    expect(raw.standby).toBeUndefined();
    expect(parseConfig(raw).standby).toBeUndefined();
  });

  test('the error message lists the file and each problem on its own line', () => {
    const raw = rawConfig();
    raw.account = '1';
    expect(() => parseConfig(raw, 'config/mine.json')).toThrow(
      /^Invalid config config\/mine\.json \(1 problem\):\n {2}- account: must be a 12-digit AWS account id/,
    );
  });

  test('a file that is not JSON is named with the parser error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-'));
    const file = join(dir, 'broken.json');
    writeFileSync(file, '{ "appName": ');
    expect(() => loadConfig(file)).toThrow(/broken\.json .*\n {2}- is not valid JSON: /s);
  });

  test('a missing file is named', () => {
    expect(() => loadConfig('/nonexistent/shop.json')).toThrow(
      /\/nonexistent\/shop\.json.*cannot read the file/s,
    );
  });

  test('production spans three AZs, lean the first two', () => {
    const prod = loadConfig('config/default.json');
    const lean = loadConfig('config/lean.json');
    expect(activeAzs(prod, prod.primary)).toEqual(['us-east-1a', 'us-east-1b', 'us-east-1c']);
    expect(activeAzs(lean, lean.primary)).toEqual(['eu-west-1a', 'eu-west-1b']);
  });
});
