// Connections to the source server: connecting as libpq would (hosts in order, sslmode allow and
// prefer falling back, target_session_attrs, channel_binding=require, authentication methods it
// cannot do refused by name), and the mapping of every failure onto one RewindError naming the
// server. A connection knows whether we are waiting on the server, so the source can tell a silent
// server from a slow disk.

import { EventEmitter } from 'node:events'
import tls from 'node:tls'
import type pg from 'pg'
import { RewindError } from '../errors.js'
import type { ConnectAttempt, ResolvedConnection, ResolvedEndpoint } from './conninfo-resolve.js'
import { createClient, type StreamingQuery, type WireConnection } from './server-wire.js'

/** The four functions pg_rewind's documentation grants to a non-superuser rewind role. */
export const REWIND_GRANTS_HINT =
  'The role needs EXECUTE on pg_catalog.pg_ls_dir(text, boolean, boolean), pg_catalog.pg_stat_file(text, boolean), ' +
  'pg_catalog.pg_read_binary_file(text) and pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean).'

interface PgError extends Error {
  code?: string
  severity?: string
  detail?: string
  hint?: string
}

function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

/** The server's words for a query failure (severity prefix dropped, detail appended). */
function serverText(err: unknown): string {
  const e = err as PgError
  const base = messageOf(err)
  return e.detail ? `${base}\n${e.detail}` : base
}

/** libpq 14+'s "connection to server ... failed: ..." line for one failed attempt. */
function connectFailure(endpoint: ResolvedEndpoint, err: unknown): string {
  const where = endpoint.isSocket
    ? `connection to server on socket "${endpoint.host}/.s.PGSQL.${endpoint.port}" failed`
    : endpoint.hostaddr !== '' && endpoint.host !== ''
      ? `connection to server at "${endpoint.host}" (${endpoint.hostaddr}), port ${endpoint.port} failed`
      : `connection to server at "${endpoint.host !== '' ? endpoint.host : endpoint.hostaddr}", port ${endpoint.port} failed`
  const e = err as PgError
  let why: string
  if (err instanceof RewindError) why = err.message
  else if (e.severity !== undefined) why = `${e.severity}:  ${serverText(err)}`
  else if (e.code === 'ECONNREFUSED') {
    why = endpoint.isSocket
      ? 'Connection refused\n\tIs the server running locally and accepting connections on that socket?'
      : 'Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?'
  } else if (e.code === 'ENOENT') {
    why = 'No such file or directory\n\tIs the server running locally and accepting connections on that socket?'
  } else if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
    return `could not translate host name "${endpoint.host}" to address: Name or service not known`
  } else if (e.code === 'EACCES') why = 'Permission denied'
  else if (e.code === 'EHOSTUNREACH') why = 'No route to host'
  else if (e.code === 'ETIMEDOUT' || messageOf(err) === 'timeout expired') why = 'timeout expired'
  else if (messageOf(err) === 'The server does not support SSL connections') why = 'server does not support SSL, but SSL was required'
  else if (/terminated unexpectedly/.test(messageOf(err))) why = 'server closed the connection unexpectedly'
  else if (e.code !== undefined && /^ERR_(TLS|SSL)|^(CERT_|UNABLE_|DEPTH_|SELF_SIGNED|ERR_OSSL)/.test(e.code))
    why = `SSL error: ${messageOf(err)}`
  else why = messageOf(err)
  return `${where}: ${why}`
}

/** A peer address that is neither absent (a Unix-domain socket) nor loopback (127.0.0.0/8, ::1). */
export function isNetworkAddress(address: string | undefined): boolean {
  if (address === undefined || address === '') return false
  return !/^(127\.|::1$|::ffff:127\.)/i.test(address)
}

/** One session on the source server. */
export class SourceConnection {
  /** Set by the source's watchdog when the server stayed silent past the timeout. */
  timedOut = false
  /** Why the connection died, if it did. */
  lostWith: unknown = null
  private active: StreamingQuery | null = null
  private simpleQueries = 0
  private closed = false

  constructor(
    readonly client: pg.Client,
    private readonly wire: WireConnection,
    readonly endpoint: ResolvedEndpoint,
    readonly attempt: ConnectAttempt,
  ) {
    // A dead socket must not become an unhandled 'error' event: the query reports it, with the
    // reason kept here (a server's "terminating connection..." comes with no query to fail).
    client.on('error', (err: unknown) => {
      this.lostWith ??= err
    })
  }

  get description(): string {
    return this.endpoint.description
  }

  /** Whether the server is reached over a network: not through a Unix-domain socket nor a loopback address. */
  get overNetwork(): boolean {
    return isNetworkAddress((this.wire.stream as { remoteAddress?: string }).remoteAddress)
  }

  /** ms since the server last sent anything while we wait on it; null when we are not waiting. */
  silentFor(now: number): number | null {
    if (this.closed) return null
    const waiting = this.simpleQueries > 0 || (this.active !== null && this.active.awaitingServer)
    return waiting ? now - this.wire.lastActivity : null
  }

  /** A text-format query, whole result in memory (small results only). */
  async query(sql: string, values?: unknown[]): Promise<pg.QueryArrayResult> {
    if (this.simpleQueries === 0 && this.active === null) this.wire.lastActivity = Date.now()
    this.simpleQueries++
    try {
      return await this.client.query({ text: sql, values: values ?? [], rowMode: 'array' })
    } finally {
      this.simpleQueries--
    }
  }

  /** Runs a streaming query to its end. */
  async stream(q: StreamingQuery): Promise<void> {
    this.active = q
    this.wire.lastActivity = Date.now()
    try {
      this.client.query(q)
      await q.done
    } finally {
      this.active = null
    }
  }

  /** Drops the socket at once (no goodbye to a server that may not answer). */
  destroy(): void {
    if (this.closed) return
    this.closed = true
    this.wire.stream.destroy()
  }

  /** Says goodbye, but gives up waiting after `ms` and drops the socket. */
  async close(ms = 2000): Promise<void> {
    if (this.closed) return
    this.closed = true
    let timer: NodeJS.Timeout | undefined
    const gaveUp = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.wire.stream.destroy()
        resolve()
      }, ms)
      timer.unref()
    })
    await Promise.race([this.client.end().catch(() => {}), gaveUp])
    clearTimeout(timer)
  }
}

// Authentication request codes of the protocol (AuthenticationXXX messages, 'R').
const AUTH_OK = 0
const AUTH_CLEARTEXT = 3
const AUTH_MD5 = 5
const AUTH_SASL = 10
const AUTH_SASL_CONTINUE = 11
const AUTH_SASL_FINAL = 12
/** Requests walrewind (node-postgres) cannot answer, with libpq's words when it cannot either. */
const AUTH_NOT_SUPPORTED: Readonly<Record<number, string>> = {
  1: 'Kerberos 4 authentication not supported',
  2: 'Kerberos 5 authentication not supported',
  4: 'Crypt authentication not supported',
  6: 'SCM_CRED authentication method not supported',
  7: 'GSSAPI authentication not supported: walrewind has no GSSAPI (Kerberos) support',
  8: 'GSSAPI authentication not supported: walrewind has no GSSAPI (Kerberos) support',
  9: 'SSPI authentication not supported: walrewind has no SSPI (Kerberos) support',
}
const AUTH_HINT = "In the source server's pg_hba.conf, authenticate the rewind role with scram-sha-256 (or md5, password, cert or trust)."

/**
 * What the server asks for during authentication, checked before node-postgres sees it (as libpq's
 * check_expected_areq): channel_binding=require refuses anything but SCRAM-SHA-256-PLUS over TLS,
 * and a method walrewind cannot do (GSSAPI, SSPI...) fails with a message naming it, instead of an
 * exception deep in the protocol parser. Wraps the connection's attachListeners, which node-postgres
 * calls with the socket (or the TLS socket) it then reads; after AuthenticationOk it only relays.
 */
function watchAuthentication(wire: WireConnection, attempt: ConnectAttempt): void {
  const requireBinding = attempt.channelBinding === 'require'
  const attach = wire.attachListeners.bind(wire)
  wire.attachListeners = (stream: NodeJS.ReadableStream) => {
    const tlsInUse = stream instanceof tls.TLSSocket
    const relay = new EventEmitter()
    let pending: Buffer = Buffer.alloc(0)
    let done = false
    let channelBound = false
    const refuse = (message: string, hint?: string): void => {
      done = true
      ;(stream as unknown as { destroy(err: Error): void }).destroy(
        new RewindError('SOURCE_CONNECTION', message, hint === undefined ? {} : { hint }),
      )
    }
    /** The problem with one authentication request, or null. */
    const check = (code: number, body: Buffer): [string, string?] | null => {
      const unsupported = AUTH_NOT_SUPPORTED[code]
      if (unsupported !== undefined) return [unsupported, AUTH_HINT]
      if (![AUTH_OK, AUTH_CLEARTEXT, AUTH_MD5, AUTH_SASL, AUTH_SASL_CONTINUE, AUTH_SASL_FINAL].includes(code)) {
        return [`authentication method ${code} not supported`, AUTH_HINT]
      }
      if (!requireBinding) return null
      if (code === AUTH_OK)
        return channelBound ? null : ['channel binding required, but server authenticated client without channel binding']
      if (code === AUTH_CLEARTEXT || code === AUTH_MD5)
        return ["channel binding required but not supported by server's authentication request"]
      if (code === AUTH_SASL) {
        if (!tlsInUse) return ['channel binding is required, but SSL not in use']
        const mechanisms = body
          .toString('utf8')
          .split('\0')
          .filter((m) => m !== '')
        if (!mechanisms.includes('SCRAM-SHA-256-PLUS')) {
          return ['channel binding is required, but server did not offer an authentication method that supports channel binding']
        }
        // node-postgres, told enableChannelBinding, picks SCRAM-SHA-256-PLUS on a TLS socket.
        channelBound = true
      }
      return null
    }
    stream.on('data', (chunk: Buffer) => {
      if (!done) {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
        let offset = 0
        // Whole messages only: type byte, int32 length (counting itself), body.
        while (!done && pending.length - offset >= 5) {
          const length = pending.readInt32BE(offset + 1)
          if (pending.length - offset < 1 + length) break
          if (pending[offset] === 0x52 /* 'R' */ && length >= 8) {
            const code = pending.readInt32BE(offset + 5)
            const problem = check(code, pending.subarray(offset + 9, offset + 1 + length))
            if (problem !== null) {
              refuse(...problem)
              return
            }
            if (code === AUTH_OK) done = true
          }
          offset += 1 + length
        }
        pending = done ? Buffer.alloc(0) : pending.subarray(offset)
      }
      relay.emit('data', chunk)
    })
    stream.on('end', () => relay.emit('end'))
    attach(relay as unknown as NodeJS.ReadableStream)
  }
}

/** Opens one connection with one attempt's settings; rejects with the raw error. */
async function connectOnce(endpoint: ResolvedEndpoint, attempt: ConnectAttempt): Promise<SourceConnection> {
  const { client, wire } = createClient(attempt.config)
  watchAuthentication(wire, attempt)
  const conn = new SourceConnection(client, wire, endpoint, attempt)
  try {
    await client.connect()
  } catch (err) {
    conn.destroy()
    throw err
  }
  return conn
}

/** Why a connection does not satisfy target_session_attrs, or null if it does. */
async function sessionMismatch(conn: SourceConnection, wanted: string): Promise<string | null> {
  if (wanted === 'any' || wanted === 'prefer-any') return null
  if (wanted === 'read-write' || wanted === 'read-only') {
    const ro = (await conn.query('SHOW transaction_read_only')).rows[0]?.[0]
    if (wanted === 'read-write' && ro === 'on') return 'session is read-only'
    if (wanted === 'read-only' && ro !== 'on') return 'session is not read-only'
    return null
  }
  const inRecovery = (await conn.query('SELECT pg_catalog.pg_is_in_recovery()')).rows[0]?.[0] === true
  if (wanted === 'primary' && inRecovery) return 'server is in hot standby mode'
  if ((wanted === 'standby' || wanted === 'prefer-standby') && !inRecovery) return 'server is not in hot standby mode'
  return null
}

/**
 * Connects to the first host that accepts us and matches target_session_attrs, trying each of its
 * attempts (TLS or not) in order, as libpq does. All failures are reported together.
 */
export async function connectFirst(resolved: ResolvedConnection): Promise<SourceConnection> {
  const endpoints = [...resolved.endpoints]
  if (resolved.loadBalance) {
    for (let i = endpoints.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1))
      const swap = endpoints[i]!
      endpoints[i] = endpoints[j]!
      endpoints[j] = swap
    }
  }
  const failures: string[] = []
  // Advice that came with a failure (e.g. an authentication method walrewind cannot do).
  const hints = new Set<string>()
  // prefer-standby: first look for a standby, then take any server.
  const passes = resolved.targetSessionAttrs === 'prefer-standby' ? ['prefer-standby', 'prefer-any'] : [resolved.targetSessionAttrs]
  for (const wanted of passes) {
    for (const endpoint of endpoints) {
      for (const attempt of endpoint.attempts) {
        let conn: SourceConnection
        try {
          conn = await connectOnce(endpoint, attempt)
        } catch (err) {
          // sslmode=prefer: a server without TLS is no failure, we just go on without it.
          if (err instanceof RewindError && err.info.hint !== undefined) hints.add(err.info.hint)
          const refusedTls = attempt.ssl && (err as Error).message === 'The server does not support SSL connections'
          if (!(refusedTls && attempt !== endpoint.attempts[endpoint.attempts.length - 1])) failures.push(connectFailure(endpoint, err))
          continue
        }
        let mismatch: string | null
        try {
          mismatch = await sessionMismatch(conn, wanted)
        } catch (err) {
          conn.destroy()
          failures.push(connectFailure(endpoint, err))
          continue
        }
        if (mismatch === null) return conn
        await conn.close()
        failures.push(connectFailure(endpoint, new RewindError('SOURCE_CONNECTION', mismatch)))
        // A server of the wrong kind stays the wrong kind without TLS.
        break
      }
    }
  }
  const unique = failures.filter((f, i) => failures.indexOf(f) === i)
  throw new RewindError('SOURCE_CONNECTION', unique.join('\n'), hints.size > 0 ? { hint: [...hints].join(' ') } : {})
}

/** One more connection to the server `like` is connected to, with the same settings. */
export async function connectAnother(like: SourceConnection): Promise<SourceConnection> {
  try {
    return await connectOnce(like.endpoint, like.attempt)
  } catch (err) {
    throw new RewindError('SOURCE_CONNECTION', connectFailure(like.endpoint, err), {}, { cause: err })
  }
}

/**
 * The error for a failed operation on `conn`: SOURCE_TIMEOUT if the watchdog cut it off,
 * SOURCE_PRIVILEGE for a missing GRANT (naming the function, as the server does), else
 * SOURCE_QUERY with the server's message. RewindErrors raised by our own checks pass through.
 */
export function sourceError(context: string, err: unknown, conn: SourceConnection, timeoutMs: number): RewindError {
  if (conn.timedOut) {
    return new RewindError(
      'SOURCE_TIMEOUT',
      `${context}: source server ${conn.description} did not answer for ${Number((timeoutMs / 1000).toFixed(1))} s`,
      {},
      { cause: err },
    )
  }
  if (err instanceof RewindError) return err
  // node-postgres's own complaint ("Connection terminated", "not queryable") hides the reason.
  if ((err as PgError).severity === undefined && conn.lostWith !== null) err = conn.lostWith
  const e = err as PgError
  const where = `(source server ${conn.description})`
  if (e.code === '42501') {
    return new RewindError('SOURCE_PRIVILEGE', `${context}: ${serverText(err)} ${where}`, { hint: REWIND_GRANTS_HINT }, { cause: err })
  }
  if (e.severity === undefined && /terminated|queryable|ECONNRESET|EPIPE|socket/i.test(messageOf(err))) {
    return new RewindError('SOURCE_QUERY', `${context}: server closed the connection unexpectedly ${where}`, {}, { cause: err })
  }
  return new RewindError('SOURCE_QUERY', `${context}: ${serverText(err)} ${where}`, e.hint ? { hint: e.hint } : {}, { cause: err })
}

/** True for a "too many connections" refusal, which leaves us with fewer parallel sessions. */
export function isTooManyConnections(err: unknown): boolean {
  const cause = (err as { cause?: unknown }).cause as PgError | undefined
  return cause?.code === '53300' || /too many clients|connection slots are reserved/.test(messageOf(err))
}
