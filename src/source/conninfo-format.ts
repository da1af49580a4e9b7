// Connection strings written back out: values quoted as libpq quotes them, and the
// primary_conninfo that -R writes for following the source, as pg_rewind builds it.

import { CONNINFO_OPTIONS } from './conninfo-parse.js'
import type { ResolvedConnection } from './conninfo-resolve.js'

/**
 * A value as libpq's appendConnStrVal writes it: bare if it is only [A-Za-z0-9_.], else in single
 * quotes with `'` and `\` backslash-escaped.
 */
export function quoteConninfoValue(value: string): string {
  if (/^[A-Za-z0-9_.]+$/.test(value)) return value
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`
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
  for (const [keyword] of CONNINFO_OPTIONS) {
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
