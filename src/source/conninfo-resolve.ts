// A parsed connection string resolved the way libpq resolves it before connecting (the service
// file, PG* environment variables, compiled-in defaults, the password file, TLS files), then mapped
// onto node-postgres options: one or more endpoints, each with the attempts to make in order.
// README "Connection options" lists every keyword.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { ConnectionOptions } from 'node:tls'
import type { ClientConfig } from 'pg'
import { refuseUnsupported, tcpSettings } from './conninfo-limits.js'
import { checkChoice, CONNINFO_KEYWORDS, CONNINFO_OPTIONS, connError, parseIntParam, type ConninfoParams } from './conninfo-parse.js'
import { tlsSettings } from './conninfo-tls.js'
import { passfileHost, readPassfile } from './pgpass.js'

type Env = Readonly<Record<string, string | undefined>>

const DEFAULT_PORT = '5432'

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

const SESSION_ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']

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
  const sysDirs =
    env['PGSYSCONFDIR'] !== undefined ? [env['PGSYSCONFDIR']] : ['/etc/postgresql-common', '/etc/sysconfig/pgsql', '/usr/local/pgsql/etc']
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
    if (!CONNINFO_KEYWORDS.has(key)) throw connError(`syntax error in service file "${file}", line ${n + 1}`)
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
  for (const [keyword, envvar] of CONNINFO_OPTIONS) {
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
  const channelBinding = (params['channel_binding'] ?? '') === '' ? 'prefer' : (params['channel_binding'] as ChannelBinding)
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
      password = readPassfile(params['passfile']!, key, (w) => {
        if (!warnings.includes(w)) warnings.push(w)
      })
      if (password !== null) passwordSource = 'passfile'
    }

    const identityHost = host !== '' ? host : hostaddr
    const tlsConf = isSocket ? null : tlsSettings(params, home, () => identityHost)
    // TCP options count for TCP connections only, as in libpq.
    const tcp = isSocket ? { keepAlive: false, keepAliveInitialDelayMillis: null } : tcpSettings(params)
    const connectHost = hostaddr !== '' ? hostaddr : host
    if (!sni && tlsConf !== null && tlsConf.options !== null && net.isIP(connectHost) === 0) {
      // node-postgres names a host it connects to by name in SNI, whatever it is told.
      throw connError(
        `connection option "sslsni" value "0" is not supported by walrewind for host "${host}": node-postgres always sends a host name as SNI`,
        "Give the server's address in hostaddr (SNI is never sent for an address), or remove sslsni.",
      )
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
    const encrypted = (o: ConnectionOptions): ConnectAttempt => ({
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
