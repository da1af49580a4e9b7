// TLS for a source connection: sslmode and the ssl* files (root certificate, revocation lists,
// client certificate and key, with libpq's permission check on the key) read as libpq's
// initialize_SSL reads them, turned into Node.js tls options.

import fs from 'node:fs'
import path from 'node:path'
import tls from 'node:tls'
import { checkChoice, connError, type ConninfoParams } from './conninfo-parse.js'

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'

export const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']
const TLS_VERSIONS: Record<string, tls.SecureVersion> = {
  tlsv1: 'TLSv1',
  'tlsv1.1': 'TLSv1.1',
  'tlsv1.2': 'TLSv1.2',
  'tlsv1.3': 'TLSv1.3',
}

/** stat() as libpq's initialize_SSL uses it: missing (ENOENT, ENOTDIR) is false, other errors are errors. */
function certFileExists(file: string): boolean {
  try {
    fs.statSync(file)
    return true
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return false
    throw connError(`could not open certificate file "${file}": ${(err as Error).message}`)
  }
}

function readSecretFile(kind: string, file: string): Buffer {
  try {
    return fs.readFileSync(file)
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : String((err as Error).message)
    throw connError(`could not open ${kind} file "${file}": ${reason}`)
  }
}

/** Private key permissions as libpq checks them (0600 for the owner, or 0640 if root owns it). */
function checkKeyFile(file: string): void {
  let st: fs.Stats
  try {
    st = fs.statSync(file)
  } catch {
    throw connError(`certificate present, but not private key file "${file}"`)
  }
  if (!st.isFile()) throw connError(`key file "${file}" is not a regular file`)
  const tooOpen = st.uid === 0 ? (st.mode & 0o137) !== 0 : (st.mode & 0o077) !== 0
  if (tooOpen) {
    throw connError(
      `private key file "${file}" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root`,
    )
  }
}

export interface TlsSettings {
  readonly mode: SslMode
  /** node tls options for an encrypted attempt; null with sslmode=disable. */
  readonly options: tls.ConnectionOptions | null
}

/** sslmode and the ssl* files as libpq's initialize_SSL reads them, as node tls options. */
export function tlsSettings(params: ConninfoParams, home: string, hostForIdentity: () => string): TlsSettings {
  const rootcertGiven = params['sslrootcert'] ?? ''
  const mode = params['sslmode'] as SslMode
  if (mode === 'disable') return { mode, options: null }

  const pgDir = path.join(home, '.postgresql')
  const options: tls.ConnectionOptions = {}
  const rootcert = rootcertGiven !== '' ? rootcertGiven : path.join(pgDir, 'root.crt')
  const rootcertExists = rootcert !== 'system' && fs.existsSync(rootcert)
  // libpq: with a root certificate file present, "require" verifies the chain like verify-ca.
  const verifyChain = mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && rootcertExists)
  if (verifyChain) {
    if (rootcert !== 'system') {
      if (!rootcertExists) {
        throw connError(
          `root certificate file "${rootcert}" does not exist`,
          "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.",
        )
      }
      options.ca = readSecretFile('root certificate', rootcert)
    }
    options.rejectUnauthorized = true
    options.checkServerIdentity =
      mode === 'verify-full' ? (_name, cert) => tls.checkServerIdentity(hostForIdentity(), cert) : () => undefined
    const crl = params['sslcrl'] ?? ''
    const crlFile = crl !== '' ? crl : path.join(pgDir, 'root.crl')
    const crls: Buffer[] = []
    if (fs.existsSync(crlFile)) crls.push(readSecretFile('certificate revocation list', crlFile))
    const crlDir = params['sslcrldir'] ?? ''
    if (crlDir !== '' && fs.existsSync(crlDir)) {
      for (const name of fs.readdirSync(crlDir).sort()) {
        const file = path.join(crlDir, name)
        if (fs.statSync(file).isFile()) crls.push(readSecretFile('certificate revocation list', file))
      }
    }
    if (crls.length > 0) options.crl = crls
  } else {
    options.rejectUnauthorized = false
  }

  const certMode = params['sslcertmode'] ?? 'allow'
  checkChoice('sslcertmode', certMode, ['disable', 'allow', 'require'])
  if (certMode === 'require') {
    throw connError(
      'sslcertmode value "require" is not supported by walrewind: Node.js does not tell whether the server asked for a client certificate',
    )
  }
  if (certMode !== 'disable') {
    const cert = params['sslcert'] ?? ''
    const certFile = cert !== '' ? cert : path.join(pgDir, 'postgresql.crt')
    // As libpq's initialize_SSL: a certificate file that is not there (named or the default one)
    // means no client certificate, and the server may or may not accept the connection.
    if (certFileExists(certFile)) {
      const key = params['sslkey'] ?? ''
      const keyFile = key !== '' ? key : path.join(pgDir, 'postgresql.key')
      checkKeyFile(keyFile)
      options.cert = readSecretFile('certificate', certFile)
      options.key = readSecretFile('private key', keyFile)
      const passphrase = params['sslpassword'] ?? ''
      if (passphrase !== '') options.passphrase = passphrase
    }
  }

  const min = params['ssl_min_protocol_version'] ?? ''
  const max = params['ssl_max_protocol_version'] ?? ''
  if (min !== '') {
    const v = TLS_VERSIONS[min.toLowerCase()]
    if (v === undefined) throw connError(`invalid ssl_min_protocol_version value: "${min}"`)
    options.minVersion = v
  }
  if (max !== '') {
    const v = TLS_VERSIONS[max.toLowerCase()]
    if (v === undefined) throw connError(`invalid ssl_max_protocol_version value: "${max}"`)
    options.maxVersion = v
  }
  if (
    min !== '' &&
    max !== '' &&
    min.toLowerCase() !== 'tlsv1' &&
    (max.toLowerCase() === 'tlsv1' || min.toLowerCase() > max.toLowerCase())
  ) {
    throw connError('invalid SSL protocol version range')
  }
  return { mode, options }
}
