/**
 * Entry point of `npm run service` and of the bundled `dist/service.js` the fleet runs:
 * configuration from the environment only.
 *
 * One process per vCPU: with SERVICE_PROCESSES above 1 (the default is one per vCPU)
 * this process becomes a node:cluster primary that runs that many workers on the shared
 * port (see {@link Supervisor}); each worker is a whole service, with its own pool, outbox
 * relay and stuck-order sweep. SERVICE_PROCESSES=1 runs the service in this process.
 */
import cluster from 'node:cluster';
import pino from 'pino';
import { EXIT_CONFIG, Supervisor } from './cluster';
import { ServiceConfig, ServiceConfigError, loadServiceConfig } from './config';
import { startService } from './server';

/** Beyond the shutdown budget, how long before a process that has not exited is ended anyway. */
const EXIT_MARGIN_MS = 5_000;

function loadConfigOrExit(): ServiceConfig {
  try {
    return loadServiceConfig();
  } catch (err) {
    if (err instanceof ServiceConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT_CONFIG); // systemd will not restart-loop on a config error
    }
    throw err;
  }
}

/**
 * The process's logger, on stdout. Written asynchronously: a line is handed to the
 * kernel in the background, and lines logged meanwhile go out together in one write,
 * where a synchronous logger made one write(2) per line on the request path. pino
 * flushes what is pending when the process exits (process.exit included); only a
 * SIGKILL can lose the lines of the last moment.
 */
function createLogger(config: ServiceConfig): pino.Logger {
  return pino({ level: config.LOG_LEVEL }, pino.destination({ dest: 1, sync: false }));
}

function runPrimary(config: ServiceConfig): void {
  const logger = createLogger(config);
  const supervisor = new Supervisor({
    processes: config.SERVICE_PROCESSES,
    fork: () => cluster.fork(),
    stopTimeoutMs: config.SHUTDOWN_DELAY_MS + config.DRAIN_TIMEOUT_MS + EXIT_MARGIN_MS,
    exit: (code) => {
      logger.info({ code }, 'every worker has exited');
      process.exit(code);
    },
    logger,
  });
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => supervisor.stop(signal));
  logger.info({ processes: config.SERVICE_PROCESSES }, 'starting worker processes');
  supervisor.start();
}

async function runService(config: ServiceConfig): Promise<void> {
  const logger = createLogger(config);
  const service = await startService(config, logger);
  logger.info({ url: service.url }, 'checkout service listening');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      // Backstop: every shutdown step is bounded, but a process must never outlive its budget.
      setTimeout(
        () => {
          logger.error('shutdown outlasted its budget: exiting');
          process.exit(1);
        },
        config.SHUTDOWN_DELAY_MS + config.DRAIN_TIMEOUT_MS + EXIT_MARGIN_MS,
      ).unref();
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

async function main(): Promise<void> {
  const config = loadConfigOrExit();
  if (cluster.isPrimary && config.SERVICE_PROCESSES > 1) return runPrimary(config);
  await runService(config);
}

main().catch((err) => {
  process.stderr.write(`checkout service failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
