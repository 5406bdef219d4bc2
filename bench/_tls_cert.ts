// A throwaway self-signed RSA-2048 certificate for the TLS 1.3 baseline of bench/load.ts.
// The key comes from node:crypto (native keygen, milliseconds); node-forge only builds and
// signs the X.509 structure. Forge's binary strings stay inside this file.
import { generateKeyPairSync } from "node:crypto";
import forge from "node-forge";

/** RSA modulus of the baseline certificate: the same strength as the server's identity key. */
export const TLS_RSA_BITS = 2048;
/** How long the certificate is valid: the benchmark uses it for minutes. */
const VALID_MS = 24 * 60 * 60 * 1000;

/** A certificate and its private key, both PEM. */
export interface TlsCert {
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Makes a self-signed certificate for `127.0.0.1` and `localhost` (subjectAltName, so rustls
 * accepts it for either name) with a fresh RSA-2048 key.
 */
export function selfSignedCert(): TlsCert {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: TLS_RSA_BITS });
  const keyPem = privateKey.export({ format: "pem", type: "pkcs1" }) as string;
  const publicPem = publicKey.export({ format: "pem", type: "spki" }) as string;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicPem);
  // A positive serial: the leading hex digit stays below 8.
  cert.serialNumber = "01" + forge.util.bytesToHex(forge.random.getBytesSync(15));
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + VALID_MS);
  const name = [{ name: "commonName", value: "hybrid-server bench" }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
    { name: "extKeyUsage", serverAuth: true },
    {
      name: "subjectAltName",
      altNames: [{ type: 7, ip: "127.0.0.1" }, { type: 2, value: "localhost" }],
    },
  ]);
  cert.sign(forge.pki.privateKeyFromPem(keyPem), forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}
