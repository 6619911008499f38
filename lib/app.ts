import { App, Tags } from 'aws-cdk-lib';
import { addCompliancePacks } from './compliance';
import { AppConfig } from './config';
import { RegionalStack } from './stacks/regional-stack';

/** The stacks one config deploys. */
export interface ShopStacks {
  readonly primary: RegionalStack;
  readonly standby?: RegionalStack;
}

/**
 * Builds every stack of a config into an app: one RegionalStack per region, tagged
 * with app, environment and owner, with the compliance packs registered.
 */
export function buildApp(app: App, config: AppConfig): ShopStacks {
  addCompliancePacks(app);
  const prefix = config.appName
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
  const primary = new RegionalStack(app, `${prefix}-Primary`, {
    config,
    role: 'primary',
    description: `${config.appName} primary region (${config.primary.region})`,
  });
  const standby = config.standby
    ? new RegionalStack(app, `${prefix}-Standby`, {
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
  // DBProxyTargetGroup takes no Tags in CloudFormation, though CDK believes it does.
  const tagOptions = { excludeResourceTypes: ['AWS::RDS::DBProxyTargetGroup'] };
  Tags.of(app).add('app', config.appName, tagOptions);
  Tags.of(app).add('environment', config.environment, tagOptions);
  Tags.of(app).add('owner', config.owner, tagOptions);
  return { primary, standby };
}
