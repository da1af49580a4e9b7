// libpq connection strings for --source-server: both syntaxes (keyword=value and postgresql://
// URIs), the service file, PG* environment variables, compiled-in defaults and the password
// file, resolved the way libpq resolves them, then mapped onto node-postgres options. The one rule:
// a setting walrewind cannot honour (GSS encryption, direct TLS, peer checks, TCP options Node.js
// cannot set...) is refused with a message naming it and saying why, never silently weakened.
// What happens on the wire during authentication (channel_binding=require, a server asking for
// GSSAPI) is checked in server-session.ts. README "Connection options" lists every keyword.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import type { ClientConfig } from 'pg'
import { RewindError } from '../errors.js'
import { passfileHost, readPassfile } from './pgpass.js'

/** keyword → value, as written (after `\` unescaping or percent-decoding). */
export type ConninfoParams = Record<string, string>

type Env = Readonly<Record<string, string | undefined>>

/**
 * Every keyword libpq 13–18 accepts, in PQconninfoOptions order (the order PQconninfo reports,
 * hence the order of primary_conninfo), with its environment variable.
 */
const KEYWORDS: ReadonlyArray<readonly [keyword: string, envvar: string | null]> = [
  ['service', 'PGSERVICE'],
  ['servicefile', null],
  ['user', 'PGUSER'],
  ['password', 'PGPASSWORD'],
  ['passfile', 'PGPASSFILE'],
  ['channel_binding', 'PGCHANNELBINDING'],
  ['connect_timeout', 'PGCONNECT_TIMEOUT'],
  ['dbname', 'PGDATABASE'],
  ['host', 'PGHOST'],
  ['hostaddr', 'PGHOSTADDR'],
  ['port', 'PGPORT'],
  ['client_encoding', 'PGCLIENTENCODING'],
  ['options', 'PGOPTIONS'],
  ['tty', 'PGTTY'],
  ['application_name', 'PGAPPNAME'],
  ['fallback_application_name', null],
  ['keepalives', null],
  ['keepalives_idle', null],
  ['keepalives_interval', null],
  ['keepalives_count', null],
  ['tcp_user_timeout', null],
  ['sslmode', 'PGSSLMODE'],
  ['sslnegotiation', 'PGSSLNEGOTIATION'],
  ['sslcompression', 'PGSSLCOMPRESSION'],
  ['sslcert', 'PGSSLCERT'],
  ['sslkey', 'PGSSLKEY'],
  ['sslcertmode', 'PGSSLCERTMODE'],
  ['sslpassword', null],
  ['sslkeylogfile', 'PGSSLKEYLOGFILE'],
  ['sslrootcert', 'PGSSLROOTCERT'],
  ['sslcrl', 'PGSSLCRL'],
  ['sslcrldir', 'PGSSLCRLDIR'],
  ['sslsni', 'PGSSLSNI'],
  ['requirepeer', 'PGREQUIREPEER'],
  ['require_auth', 'PGREQUIREAUTH'],
  ['ssl_min_protocol_version', 'PGSSLMINPROTOCOLVERSION'],
  ['ssl_max_protocol_version', 'PGSSLMAXPROTOCOLVERSION'],
  ['min_protocol_version', 'PGMINPROTOCOLVERSION'],
  ['max_protocol_version', 'PGMAXPROTOCOLVERSION'],
  ['gssencmode', 'PGGSSENCMODE'],
  ['krbsrvname', 'PGKRBSRVNAME'],
  ['gsslib', 'PGGSSLIB'],
  ['gssdelegation', 'PGGSSDELEGATION'],
  ['scram_client_key', null],
  ['scram_server_key', null],
  ['replication', null],
  ['target_session_attrs', 'PGTARGETSESSIONATTRS'],
  ['load_balance_hosts', 'PGLOADBALANCEHOSTS'],
  ['oauth_issuer', null],
  ['oauth_client_id', null],
  ['oauth_client_secret', null],
  ['oauth_scope', null],
]
const KEYWORD_SET: ReadonlySet<string> = new Set(KEYWORDS.map(([k]) => k))

const DEFAULT_PORT = '5432'
const URI_PREFIXES = ['postgresql://', 'postgres://']

function connError(message: string, hint?: string): RewindError {
  return new RewindError('SOURCE_CONNECTION', message, hint === undefined ? {} : { hint })
}

function isSpace(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r' || ch === '\f' || ch === '\v'
}

/** True for a `postgresql://` or `postgres://` URI (case-sensitive, as libpq checks). */
export function isConnectionUri(text: string): boolean {
  return URI_PREFIXES.some((p) => text.startsWith(p))
}

/** Stores one keyword as conninfo_storeval does: `requiressl` is the old spelling of sslmode. */
function store(out: ConninfoParams, keyword: string, value: string, unknown: (k: string) => string): void {
  if (keyword === 'requiressl') {
    keyword = 'sslmode'
    value = value.startsWith('1') ? 'require' : 'prefer'
  }
  if (!KEYWORD_SET.has(keyword)) throw connError(unknown(keyword))
  out[keyword] = value
}

/**
 * Parses a libpq connection string, keyword=value or URI. Only what the text says: no defaults,
 * no environment (see resolveConnection). Throws SOURCE_CONNECTION with libpq's message.
 */
export function parseConninfo(text: string): ConninfoParams {
  return isConnectionUri(text) ? parseUri(text) : parseKeywordValue(text)
}

function parseKeywordValue(text: string): ConninfoParams {
  const out: ConninfoParams = {}
  let i = 0
  const n = text.length
  while (i < n) {
    if (isSpace(text[i])) {
      i++
      continue
    }
    const nameStart = i
    while (i < n && text[i] !== '=' && !isSpace(text[i])) i++
    const name = text.slice(nameStart, i)
    while (i < n && isSpace(text[i])) i++
    if (text[i] !== '=') throw connError(`missing "=" after "${name}" in connection info string`)
    i++
    while (i < n && isSpace(text[i])) i++
    let value = ''
    if (text[i] !== "'") {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === '\\') {
          i++
          if (i < n) value += text[i++]
        } else {
          value += text[i++]
        }
      }
    } else {
      i++
      for (;;) {
        if (i >= n) throw connError('unterminated quoted string in connection info string')
        if (text[i] === '\\') {
          i++
          if (i < n) value += text[i++]
          continue
        }
        if (text[i] === "'") {
          i++
          break
        }
        value += text[i++]
      }
    }
    store(out, name, value, (k) => `invalid connection option "${k}"`)
  }
  return out
}

function hexDigit(ch: string | undefined): number {
  return ch !== undefined && /^[0-9A-Fa-f]$/.test(ch) ? parseInt(ch, 16) : -1
}

/** Percent-decoding as conninfo_uri_decode: bad triplets and %00 are errors. Bytes are UTF-8. */
function uriDecode(s: string): string {
  const bytes: number[] = []
  for (let i = 0; i < s.length;) {
    if (s[i] !== '%') {
      const cp = s.codePointAt(i)!
      const ch = String.fromCodePoint(cp)
      for (const b of Buffer.from(ch, 'utf8')) bytes.push(b)
      i += ch.length
      continue
    }
    const hi = hexDigit(s[i + 1])
    const lo = hexDigit(s[i + 2])
    if (hi < 0 || lo < 0) throw connError(`invalid percent-encoded token: "${s}"`)
    const c = (hi << 4) | lo
    if (c === 0) throw connError(`forbidden value %00 in percent-encoded value: "${s}"`)
    bytes.push(c)
    i += 3
  }
  return Buffer.from(bytes).toString('utf8')
}

function parseUri(uri: string): ConninfoParams {
  const out: ConninfoParams = {}
  const prefix = URI_PREFIXES.find((p) => uri.startsWith(p))!
  const s = uri.slice(prefix.length)
  let p = 0
  const storeDecoded = (k: string, v: string) => store(out, k, uriDecode(v), (key) => `invalid connection option "${key}"`)

  // user[:password]@ — the first '@' before any '/'
  let q = 0
  while (q < s.length && s[q] !== '@' && s[q] !== '/') q++
  if (s[q] === '@') {
    const creds = s.slice(0, q)
    const colon = creds.indexOf(':')
    const user = colon < 0 ? creds : creds.slice(0, colon)
    if (user !== '') storeDecoded('user', user)
    if (colon >= 0) {
      const password = creds.slice(colon + 1)
      if (password !== '') storeDecoded('password', password)
    }
    p = q + 1
  }

  // netloc[:port][,netloc[:port]...]
  const hosts: string[] = []
  const ports: string[] = []
  let anyPort = false
  let terminator = ''
  for (;;) {
    let host: string
    if (s[p] === '[') {
      const close = s.indexOf(']', p + 1)
      if (close < 0) throw connError(`end of string reached when looking for matching "]" in IPv6 host address in URI: "${uri}"`)
      if (close === p + 1) throw connError(`IPv6 host address may not be empty in URI: "${uri}"`)
      host = s.slice(p + 1, close)
      p = close + 1
      const next = s[p]
      if (next !== undefined && next !== ':' && next !== '/' && next !== '?' && next !== ',') {
        throw connError(`unexpected character "${next}" at position ${prefix.length + p + 1} in URI (expected ":" or "/"): "${uri}"`)
      }
    } else {
      const start = p
      while (p < s.length && !':/?,'.includes(s[p]!)) p++
      host = s.slice(start, p)
    }
    terminator = s[p] ?? ''
    hosts.push(host)
    let port = ''
    if (terminator === ':') {
      const start = ++p
      while (p < s.length && !'/?,'.includes(s[p]!)) p++
      port = s.slice(start, p)
      anyPort = true
      terminator = s[p] ?? ''
    }
    ports.push(port)
    if (terminator !== ',') break
    p++
  }
  const hostList = hosts.join(',')
  if (hostList !== '') storeDecoded('host', hostList)
  if (anyPort) storeDecoded('port', ports.join(','))

  if (terminator !== '' && terminator !== '?') {
    // '/dbname'
    const start = ++p
    while (p < s.length && s[p] !== '?') p++
    const dbname = s.slice(start, p)
    if (dbname !== '') storeDecoded('dbname', dbname)
    terminator = s[p] ?? ''
  }
  if (terminator === '?') parseUriParams(s.slice(p + 1), out)
  return out
}

function parseUriParams(query: string, out: ConninfoParams): void {
  if (query === '') return
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=')
    if (eq < 0) throw connError(`missing key/value separator "=" in URI query parameter: "${pair}"`)
    if (pair.indexOf('=', eq + 1) >= 0) throw connError(`extra key/value separator "=" in URI query parameter: "${pair}"`)
    let keyword = uriDecode(pair.slice(0, eq))
    let value = uriDecode(pair.slice(eq + 1))
    // JDBC's spelling, which libpq accepts in URIs only.
    if (keyword === 'ssl' && value === 'true') {
      keyword = 'sslmode'
      value = 'require'
    }
    store(out, keyword, value, (k) => `invalid URI query parameter: "${k}"`)
  }
}

/**
 * A value as libpq's appendConnStrVal writes it: bare if it is only [A-Za-z0-9_.], else in single
 * quotes with `'` and `\` backslash-escaped.
 */
export function quoteConninfoValue(value: string): string {
  if (/^[A-Za-z0-9_.]+$/.test(value)) return value
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`
}

// --- resolution ---------------------------------------------------------------------------

export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full'
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby'

export interface ResolveOptions {
  /**
   * libpq's DEFAULT_PGSOCKET_DIR: where a connection without a host goes, and the directory whose
   * sockets match `localhost` in the password file. Default: the first of /var/run/postgresql,
   * /run/postgresql and /tmp that holds a socket for the port, else /tmp.
   */
  readonly defaultSocketDir?: string
  /** For ~/.pgpass, ~/.pg_service.conf and ~/.postgresql/; default $HOME, else the OS user's home. */
  readonly homeDir?: string
  /** fallback_application_name when the string sets none (default `walrewind`). */
  readonly fallbackApplicationName?: string
  /** Connect timeout when connect_timeout is unset or 0, so that a dead host never hangs us. */
  readonly defaultConnectTimeoutMs?: number
}

export type ChannelBinding = 'disable' | 'prefer' | 'require'

/** One way to reach one host: TLS or not (sslmode allow and prefer give two, tried in order). */
export interface ConnectAttempt {
  readonly ssl: boolean
  readonly config: ClientConfig
  /**
   * channel_binding: with 'require' the session checks, as libpq does, that the server
   * authenticated with SCRAM-SHA-256-PLUS over TLS (see server-session.ts).
   */
  readonly channelBinding?: ChannelBinding
}

export interface ResolvedEndpoint {
  /** The host as given, or the socket directory used; empty when only hostaddr was given. */
  readonly host: string
  readonly hostaddr: string
  readonly port: number
  readonly isSocket: boolean
  /** Where the password came from: the string or PGPASSWORD ('given'), the password file, or none. */
  readonly passwordSource: 'given' | 'passfile' | null
  /** `host:port`, for messages (a socket directory is a host too). */
  readonly description: string
  readonly attempts: readonly ConnectAttempt[]
}

export interface ResolvedConnection {
  /** Every keyword with a value after the service file, the environment and the defaults. */
  readonly params: ConninfoParams
  /** Keywords set by the string, the service file or the environment (not compiled defaults). */
  readonly given: ReadonlySet<string>
  readonly endpoints: readonly ResolvedEndpoint[]
  readonly targetSessionAttrs: TargetSessionAttrs
  readonly loadBalance: boolean
  /** libpq's WARNINGs (e.g. an insecure password file), for the caller to show. */
  readonly warnings: readonly string[]
}

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']
const SESSION_ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']
const TLS_VERSIONS: Record<string, tls.SecureVersion> = {
  tlsv1: 'TLSv1', 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3',
}

function checkChoice(keyword: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) throw connError(`invalid ${keyword} value: "${value}"`)
}

/** An integer option as pqParseIntParam reads it (surrounding blanks allowed, nothing else). */
function parseIntParam(keyword: string, value: string): number {
  const t = value.trim()
  if (!/^[+-]?\d+$/.test(t) || Math.abs(Number(t)) > 2147483647) {
    throw connError(`invalid integer value "${value}" for connection option "${keyword}"`)
  }
  return Number(t)
}

function homeDirectory(env: Env, opts: ResolveOptions): string {
  if (opts.homeDir !== undefined) return opts.homeDir
  const home = env['HOME']
  if (home !== undefined && home !== '') return home
  return os.homedir()
}

/**
 * Applies the service named by `service` from PGSERVICEFILE (or ~/.pg_service.conf), then the
 * system-wide pg_service.conf; values fill only keywords not set yet (parseServiceInfo).
 */
function applyService(params: ConninfoParams, env: Env, home: string): void {
  const service = params['service'] ?? env['PGSERVICE']
  if (service === undefined || service === '') return
  const userFile = params['servicefile'] ?? env['PGSERVICEFILE'] ?? path.join(home, '.pg_service.conf')
  const sysDirs = env['PGSYSCONFDIR'] !== undefined ? [env['PGSYSCONFDIR']] : ['/etc/postgresql-common', '/etc/sysconfig/pgsql', '/usr/local/pgsql/etc']
  const files = [userFile, ...sysDirs.map((d) => path.join(d, 'pg_service.conf'))]
  for (const file of files) {
    let text: string
    try {
      text = fs.readFileSync(file, 'utf8')
    } catch {
      continue // as libpq: a file that is not there just has no services
    }
    if (applyServiceFile(text, file, service, params)) return
  }
  throw connError(`definition of service "${service}" not found`)
}

/** One service file; true if it has the group. Lines are `key=value`, untrimmed after the key. */
function applyServiceFile(text: string, file: string, service: string, params: ConninfoParams): boolean {
  let inGroup = false
  let found = false
  const lines = text.split('\n')
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.replace(/^\s+/, '').replace(/[\r\n]+$/, '')
    if (line === '' || line.startsWith('#')) continue
    if (line.startsWith('[')) {
      if (found) return true
      inGroup = line.startsWith(`[${service}]`)
      found = inGroup
      continue
    }
    if (!inGroup) continue
    const eq = line.indexOf('=')
    if (eq < 0) throw connError(`syntax error in service file "${file}", line ${n + 1}`)
    const key = line.slice(0, eq)
    const value = line.slice(eq + 1)
    if (key === 'service' || key === 'servicefile') {
      throw connError(`nested "${key}" specifications not supported in service file "${file}", line ${n + 1}`)
    }
    if (!KEYWORD_SET.has(key)) throw connError(`syntax error in service file "${file}", line ${n + 1}`)
    if (params[key] === undefined) params[key] = value
  }
  return found
}

function defaultSocketDirFor(port: string): string {
  for (const dir of ['/var/run/postgresql', '/run/postgresql', '/tmp']) {
    if (fs.existsSync(path.join(dir, `.s.PGSQL.${port}`))) return dir
  }
  return '/tmp'
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
    throw connError(`private key file "${file}" has group or world access; file must have permissions u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) or less if owned by root`)
  }
}

interface TlsSettings {
  readonly mode: SslMode
  /** node tls options for an encrypted attempt; null with sslmode=disable. */
  readonly options: tls.ConnectionOptions | null
}

/** sslmode and the ssl* files as libpq's initialize_SSL reads them, as node tls options. */
function tlsSettings(params: ConninfoParams, home: string, hostForIdentity: () => string): TlsSettings {
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
        throw connError(`root certificate file "${rootcert}" does not exist`,
          "Either provide the file, use the system's trusted roots with sslrootcert=system, or change sslmode to disable server certificate verification.")
      }
      options.ca = readSecretFile('root certificate', rootcert)
    }
    options.rejectUnauthorized = true
    options.checkServerIdentity = mode === 'verify-full'
      ? (_name, cert) => tls.checkServerIdentity(hostForIdentity(), cert)
      : () => undefined
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
    throw connError('sslcertmode value "require" is not supported by walrewind: Node.js does not tell whether the server asked for a client certificate')
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
  if (min !== '' && max !== '' && min.toLowerCase() !== 'tlsv1' && (max.toLowerCase() === 'tlsv1' || min.toLowerCase() > max.toLowerCase())) {
    throw connError('invalid SSL protocol version range')
  }
  return { mode, options }
}

/** Keywords walrewind refuses whenever they have a value, and why. */
const UNSUPPORTED: Readonly<Record<string, string>> = {
  requirepeer: 'Node.js cannot read the credentials of the server process at the other end of a Unix socket (SO_PEERCRED)',
  require_auth: 'walrewind does not restrict the authentication methods the server may ask for',
  scram_client_key: 'node-postgres authenticates with SCRAM from a password only',
  scram_server_key: 'node-postgres authenticates with SCRAM from a password only',
  oauth_issuer: 'node-postgres has no OAuth support',
  oauth_client_id: 'node-postgres has no OAuth support',
  oauth_client_secret: 'node-postgres has no OAuth support',
  oauth_scope: 'node-postgres has no OAuth support',
  sslkeylogfile: 'node-postgres gives no access to the TLS session keys',
}

/** client_encoding values that mean UTF8 (PostgreSQL compares names without case and punctuation). */
function isUtf8Encoding(value: string): boolean {
  const name = value.toLowerCase().replace(/[^a-z0-9]/g, '')
  return name === 'utf8' || name === 'unicode' || name === 'auto'
}

/** Settings libpq knows that walrewind cannot honour: refused, with the reason. */
function refuseUnsupported(params: ConninfoParams): void {
  const v = (k: string) => params[k] ?? ''
  const mode = v('sslmode')
  checkChoice('sslmode', mode, SSL_MODES)
  if (v('sslrootcert') === 'system' && mode !== 'verify-full') {
    throw connError(`weak sslmode "${mode}" may not be used with sslrootcert=system (use "verify-full")`)
  }
  const gss = v('gssencmode')
  if (gss !== '') checkChoice('gssencmode', gss, ['disable', 'prefer', 'require'])
  if (gss === 'require') {
    throw connError('gssencmode value "require" is not supported by walrewind: it has no GSSAPI support (node-postgres has none), so it cannot encrypt a connection with GSSAPI',
      'For an encrypted connection use sslmode=require or stronger; gssencmode=prefer (libpq\'s default) connects without GSSAPI encryption.')
  }
  const cb = v('channel_binding')
  if (cb !== '') checkChoice('channel_binding', cb, ['disable', 'prefer', 'require'])
  const neg = v('sslnegotiation')
  if (neg !== '') checkChoice('sslnegotiation', neg, ['postgres', 'direct'])
  if (neg === 'direct') {
    throw connError('sslnegotiation value "direct" is not supported by walrewind: node-postgres always asks the server for TLS with an SSLRequest first',
      'Use sslnegotiation=postgres (the default), which every server that accepts direct TLS connections also accepts.')
  }
  for (const [k, why] of Object.entries(UNSUPPORTED)) {
    if (v(k) !== '') throw connError(`connection option "${k}" is not supported by walrewind: ${why}`)
  }
  const minProto = v('min_protocol_version')
  if (minProto !== '' && minProto !== '3.0' && minProto !== 'latest') {
    throw connError(`connection option "min_protocol_version" value "${minProto}" is not supported by walrewind (protocol 3.0 only)`)
  }
  const encoding = v('client_encoding')
  if (encoding !== '' && !isUtf8Encoding(encoding)) {
    throw connError(`connection option "client_encoding" value "${encoding}" is not supported by walrewind: it reads file names and settings from the server as UTF8`,
      'Leave client_encoding (and PGCLIENTENCODING) unset, or set it to UTF8 or auto.')
  }
}

/**
 * The TCP settings of a connection as libpq applies them (useKeepalives, setKeepalivesIdle,
 * setKeepalivesInterval, setKeepalivesCount, setTCPUserTimeout), checked against what Node.js can
 * do: keep-alive on or off and its idle time, yes; the probe interval and count are fixed by
 * Node.js (libuv) at 1 s and 10, and TCP_USER_TIMEOUT cannot be set at all. libpq applies none of
 * them to Unix sockets, and neither does walrewind.
 */
function tcpSettings(params: ConninfoParams): { keepAlive: boolean; keepAliveInitialDelayMillis: number | null } {
  const int = (k: string): number | null => {
    const value = params[k] ?? ''
    return value === '' ? null : parseIntParam(k, value)
  }
  const keepalives = int('keepalives')
  const idle = int('keepalives_idle')
  const interval = int('keepalives_interval')
  const count = int('keepalives_count')
  const userTimeout = int('tcp_user_timeout')
  const keepAlive = keepalives === null || keepalives !== 0
  if (keepAlive) {
    if (interval !== null && interval > 0 && interval !== NODE_KEEPALIVE_INTERVAL_S) {
      throw connError(`connection option "keepalives_interval" value "${params['keepalives_interval']}" is not supported by walrewind: ` +
        `Node.js sends TCP keepalive probes every ${NODE_KEEPALIVE_INTERVAL_S} s and cannot change that`,
      `Remove keepalives_interval (or set it to ${NODE_KEEPALIVE_INTERVAL_S}); keepalives_idle is honoured.`)
    }
    if (count !== null && count > 0 && count !== NODE_KEEPALIVE_COUNT) {
      throw connError(`connection option "keepalives_count" value "${params['keepalives_count']}" is not supported by walrewind: ` +
        `Node.js gives up after ${NODE_KEEPALIVE_COUNT} unanswered TCP keepalive probes and cannot change that`,
      `Remove keepalives_count (or set it to ${NODE_KEEPALIVE_COUNT}); keepalives_idle is honoured.`)
    }
  }
  if (userTimeout !== null && userTimeout > 0) {
    throw connError(`connection option "tcp_user_timeout" value "${params['tcp_user_timeout']}" is not supported by walrewind: Node.js cannot set TCP_USER_TIMEOUT on a socket`,
      'Remove tcp_user_timeout; walrewind\'s --source-timeout=SECONDS fails the run when the source stays silent that long.')
  }
  // keepalives_idle <= 0 leaves the system's default, as setKeepAlive(true, 0) does.
  return { keepAlive, keepAliveInitialDelayMillis: keepAlive && idle !== null && idle > 0 ? idle * 1000 : null }
}

/** What Node.js 20 (libuv) sets on every socket with keep-alive on (uv__tcp_keepalive). */
const NODE_KEEPALIVE_INTERVAL_S = 1
const NODE_KEEPALIVE_COUNT = 10

function splitList(value: string | undefined): string[] {
  if (value === undefined || value === '') return []
  return value.split(',').map((s) => s.trim())
}

/**
 * Resolves `params` as libpq does before connecting: the service file, PG* environment variables,
 * compiled defaults (port 5432, sslmode prefer, user = `osUser`, dbname = user), then per host the
 * password (the string or PGPASSWORD, else the password file) and TLS settings, read from disk.
 * Several hosts (host=a,b or URI a:1,b:2) are all kept, tried in order by the server source.
 */
export function resolveConnection(input: ConninfoParams, env: Env, osUser: string, opts: ResolveOptions = {}): ResolvedConnection {
  const warnings: string[] = []
  const home = homeDirectory(env, opts)
  const params: ConninfoParams = { ...input }
  applyService(params, env, home)
  for (const [keyword, envvar] of KEYWORDS) {
    if (params[keyword] !== undefined || envvar === null) continue
    const value = env[envvar]
    if (value !== undefined) params[keyword] = value
  }
  if (params['sslmode'] === undefined && (env['PGREQUIRESSL'] ?? '').startsWith('1')) params['sslmode'] = 'require'
  const given = new Set(Object.keys(params).filter((k) => params[k] !== ''))
  delete params['service']
  delete params['servicefile']
  given.delete('service')
  given.delete('servicefile')

  // compiled-in defaults, and libpq's derived ones (connectOptions2)
  if ((params['user'] ?? '') === '') params['user'] = osUser
  if ((params['dbname'] ?? '') === '') params['dbname'] = params['user']!
  if ((params['port'] ?? '') === '') params['port'] = DEFAULT_PORT
  if ((params['sslmode'] ?? '') === '') params['sslmode'] = rootcertIsSystem(params) ? 'verify-full' : 'prefer'
  if ((params['passfile'] ?? '') === '') params['passfile'] = path.join(home, '.pgpass')
  if ((params['target_session_attrs'] ?? '') === '') params['target_session_attrs'] = 'any'
  if ((params['load_balance_hosts'] ?? '') === '') params['load_balance_hosts'] = 'disable'
  if ((params['fallback_application_name'] ?? '') === '') params['fallback_application_name'] = opts.fallbackApplicationName ?? 'walrewind'

  refuseUnsupported(params)
  const targetSessionAttrs = params['target_session_attrs'] as TargetSessionAttrs
  checkChoice('target_session_attrs', targetSessionAttrs, SESSION_ATTRS)
  checkChoice('load_balance_hosts', params['load_balance_hosts']!, ['disable', 'random'])

  // host, hostaddr and port lists, matched up as connectOptions2 does
  const hostList = splitList(params['host'])
  const addrList = splitList(params['hostaddr'])
  const portList = splitList(params['port'])
  if (hostList.length > 0 && addrList.length > 0 && hostList.length !== addrList.length) {
    throw connError(`could not match ${hostList.length} host names to ${addrList.length} hostaddr values`)
  }
  const count = Math.max(hostList.length, addrList.length, 1)
  if (portList.length > 1 && portList.length !== count) {
    throw connError(`could not match ${portList.length} port numbers to ${count} hosts`)
  }

  const connectTimeoutMs = connectTimeout(params['connect_timeout'], opts.defaultConnectTimeoutMs ?? 60_000)
  const channelBinding = (params['channel_binding'] ?? '') === '' ? 'prefer' : params['channel_binding'] as ChannelBinding
  const sni = (params['sslsni'] ?? '') === '' ? true : parseIntParam('sslsni', params['sslsni']!) !== 0
  const explicitPassword = params['password'] ?? ''
  const endpoints: ResolvedEndpoint[] = []
  for (let i = 0; i < count; i++) {
    const portText = portList.length === 0 ? DEFAULT_PORT : (portList.length === 1 ? portList[0]! : portList[i]!) || DEFAULT_PORT
    const port = parseIntParam('port', portText)
    if (port < 1 || port > 65535) throw connError(`invalid port number: "${portText}"`)
    const hostaddr = addrList[i] ?? ''
    if (hostaddr !== '' && net.isIP(hostaddr) === 0) {
      throw connError(`could not parse network address "${hostaddr}": Name or service not known`)
    }
    const defaultSocketDir = opts.defaultSocketDir ?? defaultSocketDirFor(String(port))
    let host = hostList[i] ?? ''
    if (host === '' && hostaddr === '') host = defaultSocketDir
    const isSocket = hostaddr === '' && host.startsWith('/')

    let password: string | null = explicitPassword !== '' ? explicitPassword : null
    let passwordSource: ResolvedEndpoint['passwordSource'] = password === null ? null : 'given'
    if (password === null) {
      const key = { host: passfileHost(host, hostaddr, defaultSocketDir), port: portText, dbname: params['dbname']!, user: params['user']! }
      password = readPassfile(params['passfile']!, key, (w) => { if (!warnings.includes(w)) warnings.push(w) })
      if (password !== null) passwordSource = 'passfile'
    }

    const identityHost = host !== '' ? host : hostaddr
    const tlsConf = isSocket ? null : tlsSettings(params, home, () => identityHost)
    // TCP options count for TCP connections only, as in libpq.
    const tcp = isSocket ? { keepAlive: false, keepAliveInitialDelayMillis: null } : tcpSettings(params)
    const connectHost = hostaddr !== '' ? hostaddr : host
    if (!sni && tlsConf !== null && tlsConf.options !== null && net.isIP(connectHost) === 0) {
      // node-postgres names a host it connects to by name in SNI, whatever it is told.
      throw connError(`connection option "sslsni" value "0" is not supported by walrewind for host "${host}": node-postgres always sends a host name as SNI`,
        'Give the server\'s address in hostaddr (SNI is never sent for an address), or remove sslsni.')
    }
    const base: ClientConfig = {
      host: connectHost,
      port,
      user: params['user']!,
      database: params['dbname']!,
      // A function, so that node-postgres never falls back to its own ~/.pgpass reader or to
      // process.env: with no password, a server that asks for one gets libpq's refusal.
      password: passwordProvider(password),
      connectionTimeoutMillis: connectTimeoutMs,
      fallback_application_name: params['fallback_application_name']!,
      client_encoding: 'UTF8',
      keepAlive: tcp.keepAlive,
      ...(tcp.keepAliveInitialDelayMillis !== null ? { keepAliveInitialDelayMillis: tcp.keepAliveInitialDelayMillis } : {}),
      ...((params['application_name'] ?? '') !== '' ? { application_name: params['application_name']! } : {}),
      ...((params['options'] ?? '') !== '' ? { options: params['options']! } : {}),
      // SCRAM-SHA-256-PLUS whenever the connection is TLS and the server offers it, as libpq.
      ...(channelBinding !== 'disable' ? { enableChannelBinding: true } : {}),
    }
    const replication = params['replication'] ?? ''
    if (replication !== '') (base as Record<string, unknown>)['replication'] = replication
    const plain: ConnectAttempt = { ssl: false, config: { ...base, ssl: false }, channelBinding }
    const encrypted = (o: tls.ConnectionOptions): ConnectAttempt => ({
      ssl: true,
      config: { ...base, ssl: { ...o, ...(sni && hostaddr !== '' && host !== '' && net.isIP(host) === 0 ? { servername: host } : {}) } },
      channelBinding,
    })
    let attempts: ConnectAttempt[]
    // Unix sockets never use TLS in libpq, whatever sslmode says.
    if (tlsConf === null || tlsConf.options === null) attempts = [plain]
    else if (tlsConf.mode === 'allow') attempts = [plain, encrypted(tlsConf.options)]
    else if (tlsConf.mode === 'prefer') attempts = [encrypted(tlsConf.options), plain]
    else attempts = [encrypted(tlsConf.options)]

    const shownHost = host !== '' ? host : hostaddr
    endpoints.push({
      host,
      hostaddr,
      port,
      isSocket,
      passwordSource,
      description: `${net.isIPv6(shownHost) ? `[${shownHost}]` : shownHost}:${port}`,
      attempts,
    })
  }

  return {
    params,
    given,
    endpoints,
    targetSessionAttrs,
    loadBalance: params['load_balance_hosts'] === 'random',
    warnings,
  }
}

function rootcertIsSystem(params: ConninfoParams): boolean {
  return params['sslrootcert'] === 'system'
}

/** connect_timeout in seconds; libpq treats values below 2 (but above 0) as 2, and 0 as forever. */
function connectTimeout(value: string | undefined, fallbackMs: number): number {
  if (value === undefined || value === '') return fallbackMs
  const seconds = parseIntParam('connect_timeout', value)
  if (seconds <= 0) return fallbackMs
  return Math.max(seconds, 2) * 1000
}

function passwordProvider(password: string | null): () => string {
  return () => {
    if (password === null) throw connError('fe_sendauth: no password supplied')
    return password
  }
}

/** Keywords PQconninfo never reports or GenerateRecoveryConfig drops (the walreceiver sets them). */
const NOT_IN_PRIMARY_CONNINFO = new Set(['service', 'servicefile', 'replication', 'dbname', 'fallback_application_name'])

/**
 * The primary_conninfo value pg_rewind -R writes for this connection: keyword=value pairs in
 * libpq's order, values quoted as appendConnStrVal does. Like PQconninfo it reports what was
 * given (string, service file, environment; a password only if one was given, never the password
 * file's) plus what libpq always fills in: user, port, and passfile when no password was given.
 * Unlike PQconninfo it leaves out libpq's compiled defaults (sslmode=prefer, sslsni=1,
 * gssencmode=prefer...): the standby's own libpq applies those anyway, and an older server's libpq
 * refuses keywords it does not know. With `includeDbname` (pg_rewind 18) a dbname that was given
 * is appended at the end, for slot synchronization.
 */
export function formatPrimaryConninfo(resolved: ResolvedConnection, opts: { includeDbname?: boolean } = {}): string {
  const { params, given } = resolved
  const hasPassword = (params['password'] ?? '') !== ''
  const parts: string[] = []
  for (const [keyword] of KEYWORDS) {
    const value = params[keyword]
    if (value === undefined || value === '' || NOT_IN_PRIMARY_CONNINFO.has(keyword)) continue
    const always = keyword === 'user' || keyword === 'port' || (keyword === 'passfile' && !hasPassword)
    if (!always && !given.has(keyword)) continue
    parts.push(`${keyword}=${quoteConninfoValue(value)}`)
  }
  const dbname = params['dbname'] ?? ''
  if (opts.includeDbname === true && given.has('dbname') && dbname !== '') parts.push(`dbname=${quoteConninfoValue(dbname)}`)
  return parts.join(' ')
}
