import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generate } from 'selfsigned'

/** The PEM pair `EVF_API_TLS_CERT`/`EVF_API_TLS_KEY` name, read for Node's HTTPS server. */
export async function readTlsPair(certFile: string, keyFile: string): Promise<{ cert: Buffer; key: Buffer }> {
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)])
  return { cert, key }
}

/**
 * A self-signed certificate for development (`evf tls self-signed`): RSA 2048, SHA-256, valid a
 * year for localhost and 127.0.0.1 (and `hosts`); the key file is 0600. Browsers will warn: a
 * plant's certificate comes from its own CA.
 */
export async function writeSelfSigned(
  certFile: string,
  keyFile: string,
  hosts: string[] = [],
): Promise<void> {
  const names = ['localhost', ...hosts.filter((h) => !/^[\d.:]+$/.test(h))]
  const ips = ['127.0.0.1', ...hosts.filter((h) => /^[\d.:]+$/.test(h))]
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keySize: 2048,
    algorithm: 'sha256',
    notAfterDate: new Date(Date.now() + 365 * 86_400_000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          ...names.map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  })
  for (const f of [certFile, keyFile]) await mkdir(dirname(f), { recursive: true })
  await writeFile(keyFile, pems.private, { mode: 0o600 })
  await chmod(keyFile, 0o600)
  await writeFile(certFile, pems.cert)
}
