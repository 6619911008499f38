import { isIP } from 'node:net';
import { connect } from 'node:tls';
import { DownstreamError } from '../shared/errors';
import type { ProbeEndpoint } from './contract';

/** What the probe learns from one TLS handshake. */
export interface PeerCertificate {
  readonly validTo: Date;
  readonly subject?: string;
  readonly issuer?: string;
  /** Whether the chain and host name verified against Node's CA store. */
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/** Reads one endpoint's certificate; rejects with a {@link DownstreamError} on no answer. */
export type ReadCertificate = (endpoint: ProbeEndpoint, timeoutMs: number) => Promise<PeerCertificate>;

/**
 * Opens a TLS connection (SNI set to the host name), reads the leaf certificate and
 * closes. The certificate is read even when it does not verify (`rejectUnauthorized:
 * false`): an expired or mismatched certificate is exactly what the probe must report,
 * with its real expiry, rather than as an unreachable endpoint. Nothing is sent over the
 * connection.
 *
 * @param timeoutMs the whole attempt: DNS, TCP connect and handshake
 */
export const readCertificate: ReadCertificate = (endpoint, timeoutMs) =>
  new Promise((resolve, reject) => {
    const socket = connect({
      host: endpoint.host,
      port: endpoint.port,
      // SNI must be a name; an IP address there is refused by RFC 6066 (and Node warns).
      servername: isIP(endpoint.host) ? undefined : endpoint.host,
      rejectUnauthorized: false,
    });
    const fail = (message: string, cause?: unknown) => {
      clearTimeout(timer);
      socket.destroy();
      reject(new DownstreamError(`${endpoint.label}: ${message}`, undefined, { cause }));
    };
    const timer = setTimeout(() => fail(`no TLS handshake within ${timeoutMs} ms`), timeoutMs);
    socket.once('error', (err) => fail(err.message, err));
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const certificate = socket.getPeerCertificate();
      const { authorized, authorizationError } = socket;
      socket.end();
      socket.destroy();
      const validTo = certificate?.valid_to ? new Date(certificate.valid_to) : undefined;
      if (!validTo || Number.isNaN(validTo.getTime())) {
        reject(new DownstreamError(`${endpoint.label}: the server sent no readable certificate`));
        return;
      }
      resolve({
        validTo,
        subject: certificate.subject?.CN as string | undefined,
        issuer: certificate.issuer?.CN as string | undefined,
        authorized,
        authorizationError: authorizationError ? String(authorizationError) : undefined,
      });
    });
  });
