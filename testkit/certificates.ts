import crypto from 'node:crypto';
import forge from 'node-forge';

/**
 * A throwaway PKI for TLS tests, made in-process (no openssl binary needed): a CA, a server
 * certificate for a host name, a client certificate for mTLS, and odd ones for the refusals
 * (another CA's client, an expired certificate). RSA keys come from Node's crypto (native, fast);
 * node-forge builds and signs the certificates, which Node's crypto cannot.
 */

const DAY = 86_400_000;

export interface Issued {
  cert: string;
  key: string;
}

export interface TestPki {
  ca: string;
  server: Issued;
  client: Issued;
  /** A client certificate from a CA the server does not trust. */
  strangerClient: Issued;
  /** A client certificate whose validity ended yesterday. */
  expiredClient: Issued;
}

interface Authority {
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

/** DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-256 (RFC 8017, 9.2 note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

function rsaKeys(): { pem: string; publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey } {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const key = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
  // forge's RSA is pure JavaScript (about a second a signature); sign with Node's instead.
  key.sign = (md: forge.md.MessageDigest) => {
    const digest = Buffer.from(md.digest().getBytes(), 'binary');
    return crypto.privateEncrypt({ key: privateKey, padding: crypto.constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, digest])).toString('binary');
  };
  return { pem, privateKey: key, publicKey: forge.pki.setRsaPublicKey(key.n, key.e) };
}

let serial = 1;
function certificate(subject: string, publicKey: forge.pki.rsa.PublicKey, notBefore: Date, notAfter: Date): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = (0x100000 + serial++ + crypto.randomInt(1 << 20)).toString(16);
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  cert.setSubject([{ name: 'commonName', value: subject }]);
  return cert;
}

function makeCa(name: string): Authority {
  const keys = rsaKeys();
  const cert = certificate(name, keys.publicKey, new Date(Date.now() - DAY), new Date(Date.now() + 30 * DAY));
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert, key: keys.privateKey };
}

function issue(ca: Authority, subject: string, usage: 'server' | 'client', opts: { dnsNames?: string[]; notBefore?: Date; notAfter?: Date } = {}): Issued {
  const keys = rsaKeys();
  const cert = certificate(subject, keys.publicKey, opts.notBefore ?? new Date(Date.now() - DAY), opts.notAfter ?? new Date(Date.now() + 30 * DAY));
  cert.setIssuer(ca.cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: usage === 'server', clientAuth: usage === 'client' },
    ...(opts.dnsNames ? [{ name: 'subjectAltName', altNames: opts.dnsNames.map((value) => ({ type: 2, value })) }] : []),
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.cert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'), key: keys.pem };
}

export function makeTestPki(serverName: string): TestPki {
  const ca = makeCa('durable-trader test CA');
  const stranger = makeCa('some other CA');
  return {
    ca: forge.pki.certificateToPem(ca.cert).replace(/\r\n/g, '\n'),
    server: issue(ca, serverName, 'server', { dnsNames: [serverName] }),
    client: issue(ca, 'trader-worker', 'client'),
    strangerClient: issue(stranger, 'trader-worker', 'client'),
    expiredClient: issue(ca, 'trader-worker', 'client', { notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) }),
  };
}
