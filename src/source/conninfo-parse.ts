// The syntax of libpq connection strings, both kinds (keyword=value and postgresql:// URIs), read
// as fe-connect.c reads them, and the one list of the keywords libpq knows. Only what the text
// says: the service file, the environment and the defaults are conninfo-resolve.ts's.

import { RewindError } from '../errors.js'

/** keyword → value, as written (after `\` unescaping or percent-decoding). */
export type ConninfoParams = Record<string, string>

/**
 * Every keyword of libpq 18's PQconninfoOptions, in its order (the order PQconninfo reports, hence
 * the order of primary_conninfo), with the environment variable libpq reads for it. Two more are
 * kept so that strings written for another libpq still parse: `servicefile` (libpq 19: the service
 * file, else PGSERVICEFILE) and `tty` (libpq 13, which ignored it too).
 */
export const CONNINFO_OPTIONS: ReadonlyArray<readonly [keyword: string, envvar: string | null]> = [
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
  ['sslrootcert', 'PGSSLROOTCERT'],
  ['sslcrl', 'PGSSLCRL'],
  ['sslcrldir', 'PGSSLCRLDIR'],
  ['sslsni', 'PGSSLSNI'],
  ['requirepeer', 'PGREQUIREPEER'],
  ['require_auth', 'PGREQUIREAUTH'],
  ['min_protocol_version', 'PGMINPROTOCOLVERSION'],
  ['max_protocol_version', 'PGMAXPROTOCOLVERSION'],
  ['ssl_min_protocol_version', 'PGSSLMINPROTOCOLVERSION'],
  ['ssl_max_protocol_version', 'PGSSLMAXPROTOCOLVERSION'],
  ['gssencmode', 'PGGSSENCMODE'],
  ['krbsrvname', 'PGKRBSRVNAME'],
  ['gsslib', 'PGGSSLIB'],
  ['gssdelegation', 'PGGSSDELEGATION'],
  ['replication', null],
  ['target_session_attrs', 'PGTARGETSESSIONATTRS'],
  ['load_balance_hosts', 'PGLOADBALANCEHOSTS'],
  ['scram_client_key', null],
  ['scram_server_key', null],
  ['oauth_issuer', null],
  ['oauth_client_id', null],
  ['oauth_client_secret', null],
  ['oauth_scope', null],
  ['sslkeylogfile', null],
]

/** The keywords of CONNINFO_OPTIONS: what a connection string may set. */
export const CONNINFO_KEYWORDS: ReadonlySet<string> = new Set(CONNINFO_OPTIONS.map(([k]) => k))

/** A keyword a connection string may use: one of CONNINFO_KEYWORDS, or `requiressl` (see store). */
export function isConninfoKeyword(name: string): boolean {
  return name === 'requiressl' || CONNINFO_KEYWORDS.has(name)
}

const URI_PREFIXES = ['postgresql://', 'postgres://']

/** SOURCE_CONNECTION: a connection setting that cannot be used, with libpq's message where it has one. */
export function connError(message: string, hint?: string): RewindError {
  return new RewindError('SOURCE_CONNECTION', message, hint === undefined ? {} : { hint })
}

/** A value that must be one of `allowed`, with libpq's message otherwise. */
export function checkChoice(keyword: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) throw connError(`invalid ${keyword} value: "${value}"`)
}

/** An integer option as pqParseIntParam reads it (surrounding blanks allowed, nothing else). */
export function parseIntParam(keyword: string, value: string): number {
  const t = value.trim()
  if (!/^[+-]?\d+$/.test(t) || Math.abs(Number(t)) > 2147483647) {
    throw connError(`invalid integer value "${value}" for connection option "${keyword}"`)
  }
  return Number(t)
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
  if (!CONNINFO_KEYWORDS.has(keyword)) throw connError(unknown(keyword))
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
  for (let i = 0; i < s.length; ) {
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
