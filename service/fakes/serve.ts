/**
 * SANDBOX ONLY, NOT FOR PRODUCTION. Entry point of the bundled `fakes.js`: runs one fake
 * dependency of the checkout service as its own process, so the fleet's `sandbox` setting
 * can run each as a systemd unit next to the service. The fake payment gateway approves
 * every charge that does not ask to be declined.
 *
 *   FAKE=payment-gateway PORT=4001 node fakes.js
 *   FAKE=recommendations PORT=4002 node fakes.js
 *
 * It listens on 127.0.0.1 only, and `PUT /__control` changes its behaviour at run time
 * (service/fakes/controllable-server.ts).
 */
import { ControllableServer } from './controllable-server';
import { FakePaymentGateway } from './payment-gateway';
import { FakeRecommendations } from './recommendations';

const FAKES: Record<string, () => ControllableServer> = {
  'payment-gateway': () => new FakePaymentGateway(),
  recommendations: () => new FakeRecommendations(),
};

async function main(): Promise<void> {
  const name = process.env.FAKE ?? '';
  const create = FAKES[name];
  const port = Number(process.env.PORT);
  if (!create || !Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(
      `FAKE must be one of ${Object.keys(FAKES).join(', ')} (got "${name}") and PORT a port number (got "${process.env.PORT ?? ''}")\n`,
    );
    process.exit(78); // EX_CONFIG: systemd does not restart-loop on a config error
  }
  const server = create();
  const url = await server.listen(port);
  process.stdout.write(`${JSON.stringify({ fake: name, url, sandbox: 'not for production' })}\n`);
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.close().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

main().catch((err) => {
  process.stderr.write(`fake failed to start: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
