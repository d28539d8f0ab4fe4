import net from 'node:net';
import tls from 'node:tls';

/**
 * A TLS-terminating proxy in front of a plain gRPC server, as a load balancer or an ingress in
 * front of a Temporal cluster would be (`temporal server start-dev` has no TLS flags). It speaks
 * HTTP/2 through ALPN, demands a client certificate signed by `ca` (mTLS) unless told otherwise,
 * and forwards the decrypted bytes to `target`. It counts what it let through and what it refused,
 * so a test can tell that traffic really went through TLS.
 */

export interface TlsProxy {
  port: number;
  /** Connections whose client certificate verified. */
  authorized: number;
  /** Handshakes refused (no client certificate, one from another CA, an expired one...). */
  refused: number;
  /** The subject CN of every verified client certificate, in order. */
  clients: string[];
  close(): Promise<void>;
}

export async function startTlsProxy(opts: { target: { host: string; port: number }; cert: string; key: string; ca: string; requireClientCert?: boolean }): Promise<TlsProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: TlsProxy = { port: 0, authorized: 0, refused: 0, clients: [], close: async () => undefined };
  const server = tls.createServer(
    {
      cert: opts.cert,
      key: opts.key,
      ca: opts.ca,
      ALPNProtocols: ['h2'],
      requestCert: opts.requireClientCert !== false,
      rejectUnauthorized: opts.requireClientCert !== false,
      minVersion: 'TLSv1.2',
    },
    (client) => {
      proxy.authorized += client.authorized ? 1 : 0;
      const cn = client.getPeerCertificate()?.subject?.CN;
      if (cn) proxy.clients.push(String(cn));
      const upstream = net.connect(opts.target.port, opts.target.host);
      sockets.add(client).add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    },
  );
  server.on('tlsClientError', () => {
    proxy.refused += 1;
  });
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.port = (server.address() as net.AddressInfo).port;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return proxy;
}
