import type { Command } from 'commander'
import { configOf, withSettings } from './options.ts'

const withHosts = (cmd: Command) =>
  cmd.option(
    '--host <name...>',
    'more host names or addresses it is valid for, besides localhost and 127.0.0.1',
    [],
  )

/** Development certificates: the API's (`tls self-signed`) and the embedded Kafka's (`tls kafka-keystore`). */
export function tlsCommands(program: Command): void {
  const tls = program
    .command('tls')
    .description('certificates for the API’s HTTPS and the embedded Kafka’s TLS')
  withSettings(
    withHosts(
      tls
        .command('self-signed')
        .description('write a self-signed certificate and key for development (key file 0600)')
        .option('--cert <file>', 'certificate file', '<data-dir>/tls/api.crt')
        .option('--key <file>', 'key file', '<data-dir>/tls/api.key'),
    ),
    ['dataDir'],
  ).action(selfSigned)
  withSettings(
    withHosts(
      tls
        .command('kafka-keystore')
        .description(
          'write a development PKCS12 keystore (0600) for the embedded Kafka broker, signed by a CA made for it, and that CA’s PEM; the password is EVF_KAFKA_KEYSTORE_PASSWORD from the environment, or one generated and printed once',
        )
        .option('--keystore <file>', 'keystore file', '<data-dir>/tls/kafka.p12'),
    ),
    ['dataDir'],
  ).action(kafkaKeystore)
}

async function selfSigned(o: { cert: string; key: string; host: string[] }, cmd: Command): Promise<void> {
  const { dataDir } = await configOf(cmd)
  const { writeSelfSigned } = await import('../api/index.ts')
  const at = (f: string) => f.replace('<data-dir>', dataDir)
  await writeSelfSigned(at(o.cert), at(o.key), o.host)
  process.stdout.write(`EVF_API_TLS_CERT=${at(o.cert)}\nEVF_API_TLS_KEY=${at(o.key)}\n`)
}

async function kafkaKeystore(o: { keystore: string; host: string[] }, cmd: Command): Promise<void> {
  const { dataDir, kafkaKeystorePassword } = await configOf(cmd)
  const [{ makeDevKeystore }, { randomBytes }] = await Promise.all([
    import('../services/index.ts'),
    import('node:crypto'),
  ])
  const password = kafkaKeystorePassword || randomBytes(24).toString('base64url')
  const made = await makeDevKeystore(o.keystore.replace('<data-dir>', dataDir), password, o.host)
  process.stdout.write(
    `EVF_KAFKA_KEYSTORE=${made.keystore}\n${kafkaKeystorePassword ? '' : `EVF_KAFKA_KEYSTORE_PASSWORD=${password}\n`}`,
  )
  process.stderr.write(
    `${kafkaKeystorePassword ? '' : 'The password is shown once: keep it in a secret store.\n'}The CA other clients trust (KAFKA_CA_FILE): ${made.caFile}; \`stack up\` hands it to its components itself.\n`,
  )
}
