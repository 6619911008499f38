import { spawnSync } from 'node:child_process';

/**
 * Whether an external tool the tests need is installed. Under CI=true a missing tool
 * is an error (the gate must run there); elsewhere the test is skipped with a message.
 *
 * @param probeArgs arguments that make the tool print something and exit 0
 * (`openssl version`, `moto_server --help`)
 */
export function requireTool(
  command: string,
  purpose: string,
  probeArgs: readonly string[] = ['--version'],
): boolean {
  const probe = spawnSync(command, probeArgs, { encoding: 'utf8' });
  if (!probe.error && probe.status === 0) return true;
  const message = `${command} is not installed: ${purpose}`;
  if (process.env.CI === 'true') {
    throw new Error(`${message}. CI=true requires it; install it (see docs/development.md).`);
  }
  process.stderr.write(`SKIPPED: ${message}. Install it to run these tests.\n`);
  return false;
}
