import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { AddressInfo, Server as NetServer, Socket, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import { requireTool } from './tools';

/** Whether openssl is installed (it makes the test certificates): skip, or fail under CI=true. */
export function opensslAvailable(purpose: string): boolean {
  return requireTool('openssl', purpose, ['version']);
}

/**
 * A self-signed certificate for `commonName` valid from now for `days` days, made by
 * `openssl req -x509` (an EC P-256 key: fast to generate).
 */
export function selfSignedCertificate(days: number, commonName = 'localhost'): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'probe-cert-'));
  try {
    const run = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        String(days),
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        `subjectAltName=DNS:${commonName}`,
      ],
      { encoding: 'utf8' },
    );
    if (run.status !== 0) throw new Error(`openssl failed: ${run.stderr}`);
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A local server for one test file, closed with every connection it still holds. */
export interface LocalServer {
  readonly port: number;
  close(): Promise<void>;
}

async function listen(server: NetServer): Promise<LocalServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TLS server on 127.0.0.1 presenting `certificate`; it closes each connection after the handshake. */
export function startTlsServer(certificate: { key: string; cert: string }): Promise<LocalServer> {
  return listen(createServer(certificate, (socket) => socket.end()));
}

/** A TCP server on 127.0.0.1 that accepts and never speaks: a handshake that hangs. */
export function startSilentServer(): Promise<LocalServer> {
  return listen(createNetServer(() => undefined));
}
