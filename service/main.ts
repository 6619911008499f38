/**
 * Entry point of `npm run service` and of the bundled `dist/service.js` the fleet runs:
 * configuration from the environment only.
 */
import pino from 'pino';
import { ServiceConfigError, loadServiceConfig } from './config';
import { startService } from './server';

async function main(): Promise<void> {
  let config;
  try {
    config = loadServiceConfig();
  } catch (err) {
    if (err instanceof ServiceConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(78); // EX_CONFIG: systemd will not restart-loop on a config error
    }
    throw err;
  }
  const logger = pino({ level: config.LOG_LEVEL });
  const service = await startService(config, logger);
  logger.info({ url: service.url }, 'checkout service listening');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      service.shutdown(signal).then(
        () => process.exit(0),
        (err) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

main().catch((err) => {
  process.stderr.write(`checkout service failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
