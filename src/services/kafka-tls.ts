import { X509Certificate } from 'node:crypto'
import { constants } from 'node:fs'
import { access, chmod, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { mkdirPrivate } from '../shared/fs.ts'
import { runTool } from '../shared/process.ts'

/**
 * The embedded broker's TLS (docs/security.md, "TLS"): its client listener becomes SASL_SSL with
 * the key of a PKCS12 keystore, and every client, the brokers themselves included, trusts one CA.
 */
export interface KafkaTls {
  /** the PKCS12 keystore: one private key and its certificate chain */
  keystore: string
  /** the keystore's password, which is its key's too (PKCS12 as keytool makes it) */
  password: string
  /** the PEM of the CA the clients and the brokers trust */
  caFile: string
}

/** Where `stack up` exports the keystore's root certificate when `KAFKA_CA_FILE` is empty. */
export const exportedCaFile = (dataDir: string): string => join(dataDir, 'secrets', 'kafka-ca.pem')

type TlsSettings = Pick<
  Config,
  'dataDir' | 'kafkaBrokers' | 'kafkaKeystore' | 'kafkaKeystorePassword' | 'kafkaCaFile'
>

const KEYSTORE = 'kafkaKeystore (EVF_KAFKA_KEYSTORE)'
const PASSWORD = 'kafkaKeystorePassword (EVF_KAFKA_KEYSTORE_PASSWORD)'
const CA_FILE = 'kafkaCaFile (KAFKA_CA_FILE)'
const invalid = (message: string) => new PipelineError('CONFIG_INVALID', message)

/**
 * The embedded broker's TLS, or undefined without a keystore. Checked before any service starts,
 * so that a keystore Kafka could not use stops `stack up` with the setting's name rather than a
 * broker that dies: readable, opened by its password (keytool), one private key, a certificate
 * valid now and for 127.0.0.1 (where the brokers listen and connect to each other). The CA is
 * `KAFKA_CA_FILE`, which must have issued that certificate, or else the root of the key's chain,
 * exported at every start into `<dataDir>/secrets/kafka-ca.pem`.
 */
export async function brokerTls(config: TlsSettings): Promise<KafkaTls | undefined> {
  if (!config.kafkaKeystore) return undefined
  if (config.kafkaBrokers) {
    throw invalid(
      `${KEYSTORE} is the embedded broker's, and with kafkaBrokers (KAFKA_BROKERS) set no broker is started: unset EVF_KAFKA_KEYSTORE (the clients speak TLS to an existing cluster with KAFKA_CA_FILE)`,
    )
  }
  const password = config.kafkaKeystorePassword
  if (!password) throw invalid(`${KEYSTORE} is set but ${PASSWORD} is empty: give the keystore's password`)
  if (/[\r\n]/.test(password)) throw invalid(`${PASSWORD} holds a line break, which a Kafka property cannot`)
  const keystore = resolve(config.kafkaKeystore)
  await access(keystore, constants.R_OK).catch((error: NodeJS.ErrnoException) => {
    throw invalid(`${KEYSTORE} = ${keystore} cannot be read (${error.code ?? error.message})`)
  })
  const chain = await keyChain(keystore, password)
  checkCertificate(chain[0]!, keystore)
  if (config.kafkaCaFile) {
    const caFile = resolve(config.kafkaCaFile)
    const cas = pemCertificates(await readFile(caFile, 'utf8').catch(() => ''))
    if (cas.length === 0) throw invalid(`${CA_FILE} = ${caFile} cannot be read or holds no PEM certificate`)
    if (!chain.some((cert) => cas.some((ca) => issuedBy(cert, ca)))) {
      throw invalid(
        `${CA_FILE} = ${caFile} did not issue the certificate of ${KEYSTORE} = ${keystore}: the clients would refuse the broker`,
      )
    }
    return { keystore, password, caFile }
  }
  const root = chain.at(-1)!
  if (!issuedBy(root, root)) {
    throw invalid(
      `the certificate chain of ${KEYSTORE} = ${keystore} ends at one issued by "${root.issuer}", not at a root: set ${CA_FILE} to that CA's PEM`,
    )
  }
  const caFile = exportedCaFile(config.dataDir)
  mkdirPrivate(dirname(caFile))
  await writeFile(caFile, root.toString())
  return { keystore, password, caFile }
}

/** Whether `ca` signed `cert` (or is it). */
const issuedBy = (cert: X509Certificate, ca: X509Certificate): boolean =>
  cert.fingerprint256 === ca.fingerprint256 || (cert.checkIssued(ca) && cert.verify(ca.publicKey))

function checkCertificate(leaf: X509Certificate, keystore: string): void {
  const now = Date.now()
  if (Date.parse(leaf.validTo) < now || Date.parse(leaf.validFrom) > now) {
    throw invalid(
      `the certificate of ${KEYSTORE} = ${keystore} is not valid now (from ${leaf.validFrom} to ${leaf.validTo}): make a new one`,
    )
  }
  if (!leaf.checkIP('127.0.0.1')) {
    throw invalid(
      `the certificate of ${KEYSTORE} = ${keystore} is not valid for 127.0.0.1 (its subjectAltName: ${leaf.subjectAltName ?? 'none'}), where the embedded brokers listen: add IP:127.0.0.1`,
    )
  }
}

/** The certificates of the keystore's one private key, leaf first, as `keytool -list -rfc` prints them. */
async function keyChain(keystore: string, password: string): Promise<X509Certificate[]> {
  const list = await keytool(['-list', '-rfc', '-storetype', 'PKCS12', '-keystore', keystore], password)
  if (list.code !== 0) {
    const said = keytoolError(list.output)
    throw invalid(
      /password was incorrect/i.test(said)
        ? `${PASSWORD} does not open ${KEYSTORE} = ${keystore} (keytool: ${said})`
        : `${KEYSTORE} = ${keystore} is not a PKCS12 keystore keytool can open with ${PASSWORD} (keytool: ${said})`,
    )
  }
  const keys = list.output
    .split(/^Alias name: /m)
    .filter((entry) => /^Entry type: PrivateKeyEntry$/m.test(entry))
  if (keys.length !== 1) {
    throw invalid(`${KEYSTORE} = ${keystore} holds ${keys.length} private keys; the broker needs exactly one`)
  }
  const chain = pemCertificates(keys[0]!)
  if (chain.length === 0)
    throw invalid(`${KEYSTORE} = ${keystore}: keytool listed no certificate for its key`)
  return chain
}

const pemCertificates = (text: string): X509Certificate[] =>
  (text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? []).map(
    (pem) => new X509Certificate(pem),
  )

const keytoolError = (output: string): string =>
  /^keytool error: (?:[\w.]+: )?(.*)$/m.exec(output)?.[1]?.trim() ?? output.trim().split('\n').at(-1) ?? ''

/** The variable that hands keytool the password (`-storepass:env`): never on a command line. */
const PASSWORD_VAR = 'EVF_KEYTOOL_PASSWORD'

/** Runs the JDK's keytool in English (its output is parsed), the password in its environment. */
function keytool(args: string[], password: string): Promise<{ code: number; output: string }> {
  return runTool(
    'keytool',
    ['-J-Duser.language=en', '-J-Duser.country=US', ...args, '-storepass:env', PASSWORD_VAR],
    {
      env: { ...process.env, [PASSWORD_VAR]: password },
      secrets: [password],
      hint: 'it comes with Java 17+, which must be on PATH',
    },
  )
}

/** keytool, failing with what it said. */
async function keytoolOk(args: string[], password: string): Promise<void> {
  const { code, output } = await keytool(args, password)
  if (code !== 0) throw new PipelineError('UNEXPECTED', `keytool ${args[0]} failed: ${keytoolError(output)}`)
}

/**
 * A development keystore for the embedded broker (`evf tls kafka-keystore`): a CA made for it
 * (RSA 2048, a year; its key is thrown away) signs the broker's key (RSA 2048, a year, for
 * localhost, 127.0.0.1 and `hosts`), and the PKCS12 keystore (0600) holds that key with the chain
 * up to the CA. The CA's certificate is written next to it for other clients (kcat, kafkajs).
 * Both replace earlier files only once complete. The password reaches keytool through its
 * environment.
 */
export async function makeDevKeystore(
  keystore: string,
  password: string,
  hosts: string[] = [],
): Promise<{ keystore: string; caFile: string }> {
  if (password.length < 6) throw invalid(`${PASSWORD} must have at least 6 characters (keytool's rule)`)
  const target = resolve(keystore)
  const caFile = target.replace(/(\.p12|\.pfx)?$/, '-ca.pem')
  await mkdir(dirname(target), { recursive: true })
  // mkdtemp makes it 0700: the CA's key lives there for a moment.
  const work = await mkdtemp(join(dirname(target), '.kafka-keystore-'))
  try {
    await issueInto(work, password, hosts)
    await chmod(join(work, 'kafka.p12'), 0o600)
    await rename(join(work, 'kafka.p12'), target)
    await writeFile(caFile, await readFile(join(work, 'ca.pem'), 'utf8'))
    return { keystore: target, caFile }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/** keytool's steps of `makeDevKeystore`, in `work`: `ca.p12`, `ca.pem`, then `kafka.p12`. */
async function issueInto(work: string, password: string, hosts: string[]): Promise<void> {
  const at = (f: string) => join(work, f)
  const store = (f: string) => ['-storetype', 'PKCS12', '-keystore', at(f)]
  const ca = ['-alias', 'ca', ...store('ca.p12')]
  const broker = ['-alias', 'kafka', ...store('kafka.p12')]
  const key = '-keyalg RSA -keysize 2048 -sigalg SHA256withRSA -validity 365'.split(' ')
  const caExt = '-ext bc:c=ca:true,pathlen:0 -ext KeyUsage=keyCertSign,cRLSign'.split(' ')
  const san = ['localhost', '127.0.0.1', ...hosts].map((h) => (/^[\d.:]+$/.test(h) ? `ip:${h}` : `dns:${h}`))
  const brokerExt = [
    ...['-ext', `SAN=${san.join(',')}`, '-ext', 'KeyUsage=digitalSignature,keyEncipherment'],
    ...['-ext', 'ExtendedKeyUsage=serverAuth,clientAuth', '-validity', '365', '-rfc'],
  ]
  const csr = ['-infile', at('kafka.csr'), '-outfile', at('kafka.crt')]
  await keytoolOk(['-genkeypair', ...ca, ...key, ...caExt, '-dname', 'CN=evf development Kafka CA'], password)
  await keytoolOk(['-genkeypair', ...broker, ...key, '-dname', 'CN=localhost'], password)
  await keytoolOk(['-certreq', ...broker, '-file', at('kafka.csr')], password)
  await keytoolOk(['-gencert', ...ca, ...csr, ...brokerExt], password)
  await keytoolOk(['-exportcert', ...ca, '-rfc', '-file', at('ca.pem')], password)
  // The reply is the whole chain, so the key's entry holds it up to the root.
  const chain = (await readFile(at('kafka.crt'), 'utf8')) + (await readFile(at('ca.pem'), 'utf8'))
  await writeFile(at('chain.pem'), chain)
  await keytoolOk(['-importcert', ...broker, '-file', at('chain.pem'), '-noprompt'], password)
}
