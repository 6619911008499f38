#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { ConfigError, loadConfig } from '../lib/config';

const app = new App();
const configPath = (app.node.tryGetContext('config') as string | undefined) ?? 'config/default.json';

try {
  buildApp(app, loadConfig(configPath));
} catch (err) {
  if (err instanceof ConfigError) {
    // One line per bad field; a stack trace would only hide them.
    process.stderr.write(`${err.message}\n`);
    process.exit(1);
  }
  throw err;
}
