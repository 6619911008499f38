import { App, Tags } from 'aws-cdk-lib';
import { addCompliancePacks } from './compliance';
import { AppConfig } from './config';
import { DnsFailoverStack } from './stacks/dns-failover-stack';
import { RegionalStack } from './stacks/regional-stack';

/** The stacks one config deploys. */
export interface ShopStacks {
  readonly primary: RegionalStack;
  readonly standby?: RegionalStack;
  /** Route 53 health checks and failover records (us-east-1), when there is a standby. */
  readonly dnsFailover?: DnsFailoverStack;
}

/**
 * The stack names of a config: `<AppName>-Primary`, `<AppName>-Standby` and
 * `<AppName>-DnsFailover`, `<AppName>` being `appName` in PascalCase. Operator scripts
 * derive resource names from them (the fleet's `<stack>-checkout`, the cluster's
 * `<stack>-aurora`).
 */
export function stackNames(config: AppConfig): { primary: string; standby: string; dnsFailover: string } {
  const prefix = config.appName
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
  return { primary: `${prefix}-Primary`, standby: `${prefix}-Standby`, dnsFailover: `${prefix}-DnsFailover` };
}

/**
 * Builds every stack of a config into an app: one RegionalStack per region and, with a
 * standby, the DnsFailoverStack; each tagged
 * with app, environment and owner, with the compliance packs registered.
 */
export function buildApp(app: App, config: AppConfig): ShopStacks {
  addCompliancePacks(app);
  const names = stackNames(config);
  const primary = new RegionalStack(app, names.primary, {
    config,
    role: 'primary',
    description: `${config.appName} primary region (${config.primary.region})`,
  });
  const standby = config.standby
    ? new RegionalStack(app, names.standby, {
        config,
        role: 'standby',
        description: `${config.appName} warm standby region (${config.standby.region})`,
      })
    : undefined;
  // The standby's cluster joins the global cluster the primary creates.
  standby?.addStackDependency(
    primary,
    'the standby cluster joins the global database the primary stack creates',
  );
  const dnsFailover = standby
    ? new DnsFailoverStack(app, names.dnsFailover, {
        config,
        primary,
        standby,
        description: `${config.appName} DNS failover: Route 53 health checks and failover records of ${config.domainName}`,
      })
    : undefined;
  // DBProxyTargetGroup takes no Tags in CloudFormation, though CDK believes it does.
  // Dashboards took Tags only in June 2026, and cfn-lint 1.51 (which gates the templates)
  // still refuses them; a dashboard costs nothing to leave untagged.
  const tagOptions = { excludeResourceTypes: ['AWS::RDS::DBProxyTargetGroup', 'AWS::CloudWatch::Dashboard'] };
  Tags.of(app).add('app', config.appName, tagOptions);
  Tags.of(app).add('environment', config.environment, tagOptions);
  Tags.of(app).add('owner', config.owner, tagOptions);
  return { primary, standby, dnsFailover };
}
