import tls from 'node:tls';
import type { TemporalTls } from './temporal-security';

/**
 * Why a TLS connection to Temporal failed, in the operator's terms. The gRPC client reports any
 * handshake failure as "Failed to connect before the deadline", which says nothing about the
 * cause; so after a failure we make one TLS handshake of our own with the same settings and read
 * what OpenSSL says (a TLS 1.3 server's "certificate required" alert arrives only after the
 * handshake, on the first read, hence the short wait after it). Written by hand: no library maps
 * handshake failures to the settings that cause them.
 */
export async function diagnoseTls(address: string, settings: TemporalTls, timeoutMs = 3_000): Promise<string | undefined> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) return undefined;
  const [, host, port] = m;
  type Outcome = { error?: NodeJS.ErrnoException; ok?: boolean; closedAfterHandshake?: boolean };
  const outcome = await new Promise<Outcome>((resolve) => {
    let settled = false;
    let handshaken = false;
    let received = false;
    const done = (r: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(r);
    };
    const socket = tls.connect({
      host,
      port: Number(port),
      servername: settings.serverNameOverride ?? (isIp(host) ? undefined : host),
      ca: settings.serverRootCACertificate,
      cert: settings.clientCertPair?.crt,
      key: settings.clientCertPair?.key,
      ALPNProtocols: ['h2'],
    });
    // A server that keeps the connection open this long after the handshake accepted us.
    const timer = setTimeout(() => done({ ok: true }), timeoutMs);
    socket.once('secureConnect', () => {
      handshaken = true;
      clearTimeout(timer);
      setTimeout(() => done({ ok: true }), 1_000);
    });
    // An HTTP/2 server speaks first (its SETTINGS frame): data means it accepted us.
    socket.on('data', () => {
      received = true;
    });
    socket.once('error', (error: NodeJS.ErrnoException) => done({ error }));
    socket.once('close', () => done(handshaken && !received ? { closedAfterHandshake: true } : { ok: true }));
  });
  if (outcome.closedAfterHandshake) {
    // Some servers (Node's own TLS, some proxies) hang up without an alert when they reject a client.
    return settings.clientCertPair
      ? 'the server hung up right after the TLS handshake: it refused our client certificate (TEMPORAL_TLS_CERT: signed by a CA it does not trust, expired, or not for client authentication), or the service behind it is down'
      : 'the server hung up right after the TLS handshake: it requires a client certificate (mTLS: set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY), or the service behind it is down';
  }
  if (!outcome.error) return undefined;
  const e = outcome.error;
  const text = `${e.code ?? ''} ${e.message}`;
  if (/certificate required/i.test(text)) return 'the server requires a client certificate (mTLS): set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY';
  if (/alert (unknown ca|bad certificate|certificate unknown|certificate expired|certificate revoked|unsupported certificate|access denied)/i.test(text)) {
    return 'the server refused our client certificate (TEMPORAL_TLS_CERT): signed by a CA it does not trust, expired, or not for client authentication';
  }
  if (/ALTNAME|does not match certificate|altnames/i.test(text)) {
    return `the server's certificate is for another name than ${settings.serverNameOverride ?? host}: set TEMPORAL_TLS_SERVER_NAME to the name in it`;
  }
  if (/SELF_SIGNED|UNABLE_TO_(GET_ISSUER|VERIFY)|unable to (get|verify)|self.signed|CERT_UNTRUSTED/i.test(text)) {
    return "the server's certificate is not signed by a CA we trust: set TEMPORAL_TLS_CA to its CA certificate";
  }
  if (/CERT_HAS_EXPIRED/i.test(text)) return "the server's certificate has expired";
  if (/wrong version number|packet length too long|unexpected eof|ECONNRESET/i.test(text)) return 'the server does not speak TLS there (a plain gRPC port?): check TEMPORAL_ADDRESS, or set TEMPORAL_TLS=false';
  if (e.code === 'ECONNREFUSED') return `nothing listens on ${address}`;
  return `TLS handshake: ${e.message}`;
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}
