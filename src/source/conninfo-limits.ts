// What walrewind cannot honour of what libpq knows (GSS encryption, direct TLS, peer checks, TCP
// options Node.js cannot set...): refused with a message naming the setting and saying why, never
// silently weakened. What happens on the wire during authentication (channel_binding=require, a
// server asking for GSSAPI) is checked in server-session.ts.

import { checkChoice, connError, parseIntParam, type ConninfoParams } from './conninfo-parse.js'
import { SSL_MODES } from './conninfo-tls.js'

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
export function refuseUnsupported(params: ConninfoParams): void {
  const v = (k: string) => params[k] ?? ''
  const mode = v('sslmode')
  checkChoice('sslmode', mode, SSL_MODES)
  if (v('sslrootcert') === 'system' && mode !== 'verify-full') {
    throw connError(`weak sslmode "${mode}" may not be used with sslrootcert=system (use "verify-full")`)
  }
  const gss = v('gssencmode')
  if (gss !== '') checkChoice('gssencmode', gss, ['disable', 'prefer', 'require'])
  if (gss === 'require') {
    throw connError(
      'gssencmode value "require" is not supported by walrewind: it has no GSSAPI support (node-postgres has none), so it cannot encrypt a connection with GSSAPI',
      "For an encrypted connection use sslmode=require or stronger; gssencmode=prefer (libpq's default) connects without GSSAPI encryption.",
    )
  }
  const cb = v('channel_binding')
  if (cb !== '') checkChoice('channel_binding', cb, ['disable', 'prefer', 'require'])
  const neg = v('sslnegotiation')
  if (neg !== '') checkChoice('sslnegotiation', neg, ['postgres', 'direct'])
  if (neg === 'direct') {
    throw connError(
      'sslnegotiation value "direct" is not supported by walrewind: node-postgres always asks the server for TLS with an SSLRequest first',
      'Use sslnegotiation=postgres (the default), which every server that accepts direct TLS connections also accepts.',
    )
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
    throw connError(
      `connection option "client_encoding" value "${encoding}" is not supported by walrewind: it reads file names and settings from the server as UTF8`,
      'Leave client_encoding (and PGCLIENTENCODING) unset, or set it to UTF8 or auto.',
    )
  }
}

/**
 * The TCP settings of a connection as libpq applies them (useKeepalives, setKeepalivesIdle,
 * setKeepalivesInterval, setKeepalivesCount, setTCPUserTimeout), checked against what Node.js can
 * do: keep-alive on or off and its idle time, yes; the probe interval and count are fixed by
 * Node.js (libuv) at 1 s and 10, and TCP_USER_TIMEOUT cannot be set at all. libpq applies none of
 * them to Unix sockets, and neither does walrewind.
 */
export function tcpSettings(params: ConninfoParams): { keepAlive: boolean; keepAliveInitialDelayMillis: number | null } {
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
      throw connError(
        `connection option "keepalives_interval" value "${params['keepalives_interval']}" is not supported by walrewind: ` +
          `Node.js sends TCP keepalive probes every ${NODE_KEEPALIVE_INTERVAL_S} s and cannot change that`,
        `Remove keepalives_interval (or set it to ${NODE_KEEPALIVE_INTERVAL_S}); keepalives_idle is honoured.`,
      )
    }
    if (count !== null && count > 0 && count !== NODE_KEEPALIVE_COUNT) {
      throw connError(
        `connection option "keepalives_count" value "${params['keepalives_count']}" is not supported by walrewind: ` +
          `Node.js gives up after ${NODE_KEEPALIVE_COUNT} unanswered TCP keepalive probes and cannot change that`,
        `Remove keepalives_count (or set it to ${NODE_KEEPALIVE_COUNT}); keepalives_idle is honoured.`,
      )
    }
  }
  if (userTimeout !== null && userTimeout > 0) {
    throw connError(
      `connection option "tcp_user_timeout" value "${params['tcp_user_timeout']}" is not supported by walrewind: Node.js cannot set TCP_USER_TIMEOUT on a socket`,
      "Remove tcp_user_timeout; walrewind's --source-timeout=SECONDS fails the run when the source stays silent that long.",
    )
  }
  // keepalives_idle <= 0 leaves the system's default, as setKeepAlive(true, 0) does.
  return { keepAlive, keepAliveInitialDelayMillis: keepAlive && idle !== null && idle > 0 ? idle * 1000 : null }
}

/** What Node.js 20 (libuv) sets on every socket with keep-alive on (uv__tcp_keepalive). */
const NODE_KEEPALIVE_INTERVAL_S = 1
const NODE_KEEPALIVE_COUNT = 10
