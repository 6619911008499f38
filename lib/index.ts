export * from './app';
export * from './compliance';
export * from './config';
export * from './constructs/network';
export * from './constructs/security-groups';
export * from './stacks/regional-stack';
