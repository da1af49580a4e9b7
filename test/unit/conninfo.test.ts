// libpq connection strings, the password file and their mapping onto node-postgres options.
// Expected values follow libpq (fe-connect.c) and, for primary_conninfo, the output of the real
// pg_rewind 15 -R on a test cluster (see the formatPrimaryConninfo tests).

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import type { ConnectionOptions } from 'node:tls'
import { formatPrimaryConninfo, quoteConninfoValue } from '../../src/source/conninfo-format.js'
import { CONNINFO_KEYWORDS, isConninfoKeyword, isConnectionUri, parseConninfo } from '../../src/source/conninfo-parse.js'
import { resolveConnection, type ResolveOptions } from '../../src/source/conninfo-resolve.js'
import { lookupPassword, passfileHost, readPassfile } from '../../src/source/pgpass.js'
import { isRewindError } from '../../src/errors.js'

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-conninfo-'))
after(() => fs.rmSync(tmp, { recursive: true, force: true }))

let fileNo = 0
function writeFile(content: string | Buffer, mode = 0o600): string {
  const file = path.join(tmp, `f${fileNo++}`)
  fs.writeFileSync(file, content, { mode })
  fs.chmodSync(file, mode)
  return file
}

function emptyHome(): string {
  const dir = path.join(tmp, `home${fileNo++}`)
  fs.mkdirSync(dir)
  return dir
}

/** Asserts a SOURCE_CONNECTION error with exactly `message`. */
function rejects(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isRewindError(err), `not a RewindError: ${String(err)}`)
    assert.equal(err.code, 'SOURCE_CONNECTION')
    if (typeof message === 'string') assert.equal(err.message, message)
    else assert.match(err.message, message)
    return true
  })
}

const opts = (extra: Partial<ResolveOptions> = {}): ResolveOptions => ({ defaultSocketDir: '/tmp', homeDir: emptyHome(), ...extra })
const resolve = (text: string, env: Record<string, string> = {}, extra: Partial<ResolveOptions> = {}) =>
  resolveConnection(parseConninfo(text), env, 'osuser', opts(extra))

describe('parseConninfo: keyword=value', () => {
  it('reads plain values, blanks around "=" and several pairs', () => {
    assert.deepEqual(parseConninfo('host=db1 port = 5433\tdbname=  app  user=x'), { host: 'db1', port: '5433', dbname: 'app', user: 'x' })
  })
  it("reads quoted values with \\' and \\\\ escapes", () => {
    assert.deepEqual(parseConninfo("password='it\\'s a \\\\ secret' application_name='two words'"), {
      password: "it's a \\ secret",
      application_name: 'two words',
    })
  })
  it('unescapes backslashes outside quotes and keeps empty values', () => {
    assert.deepEqual(parseConninfo("password=a\\ b host=''"), { password: 'a b', host: '' })
  })
  it('lets a later keyword win and translates requiressl', () => {
    assert.deepEqual(parseConninfo('port=1 port=2 requiressl=1'), { port: '2', sslmode: 'require' })
    assert.deepEqual(parseConninfo('requiressl=0'), { sslmode: 'prefer' })
  })
  it('accepts an empty string, and an empty value at the end', () => {
    assert.deepEqual(parseConninfo('   '), {})
    assert.deepEqual(parseConninfo('host =  '), { host: '' })
  })
  it('fails as libpq does', () => {
    rejects(() => parseConninfo('mydb'), 'missing "=" after "mydb" in connection info string')
    rejects(() => parseConninfo("password='open"), 'unterminated quoted string in connection info string')
    rejects(() => parseConninfo('hots=db1'), 'invalid connection option "hots"')
    rejects(() => parseConninfo('__proto__=x'), 'invalid connection option "__proto__"')
  })
})

describe('parseConninfo: URIs', () => {
  it('recognizes both prefixes, case-sensitively', () => {
    assert.ok(isConnectionUri('postgresql://h'))
    assert.ok(isConnectionUri('postgres://h'))
    assert.ok(!isConnectionUri('POSTGRESQL://h'))
  })
  it('reads user, password, host, port, dbname and parameters', () => {
    assert.deepEqual(parseConninfo('postgresql://rewinder:s3cret@db1.example.com:5433/app?sslmode=verify-full&application_name=ha'), {
      user: 'rewinder',
      password: 's3cret',
      host: 'db1.example.com',
      port: '5433',
      dbname: 'app',
      sslmode: 'verify-full',
      application_name: 'ha',
    })
  })
  it('percent-decodes every part, with UTF-8', () => {
    assert.deepEqual(parseConninfo('postgres://us%40er:p%3Aw%2Fd@h/d%C3%A9b?options=-c%20x%3Dy'), {
      user: 'us@er',
      password: 'p:w/d',
      host: 'h',
      dbname: 'déb',
      options: '-c x=y',
    })
  })
  it('takes the password up to the "@", colons included', () => {
    assert.deepEqual(parseConninfo('postgresql://u:a:b@h'), { user: 'u', password: 'a:b', host: 'h' })
  })
  it('reads IPv6 hosts in brackets', () => {
    assert.deepEqual(parseConninfo('postgresql://[::1]:5433/db'), { host: '::1', port: '5433', dbname: 'db' })
    assert.deepEqual(parseConninfo('postgresql://[2001:db8::7]/db'), { host: '2001:db8::7', dbname: 'db' })
  })
  it('keeps several hosts and their ports, position by position', () => {
    assert.deepEqual(parseConninfo('postgresql://h1:5433,h2,[::1]:5435/db'), { host: 'h1,h2,::1', port: '5433,,5435', dbname: 'db' })
  })
  it('takes a socket directory from host= or an encoded host', () => {
    assert.deepEqual(parseConninfo('postgresql:///app?host=/var/run/postgresql&port=5434'), {
      dbname: 'app',
      host: '/var/run/postgresql',
      port: '5434',
    })
    assert.deepEqual(parseConninfo('postgresql://%2Ftmp%2Fsock/app'), { host: '/tmp/sock', dbname: 'app' })
  })
  it('leaves out empty parts and accepts the bare prefix', () => {
    assert.deepEqual(parseConninfo('postgresql://'), {})
    assert.deepEqual(parseConninfo('postgresql://h/'), { host: 'h' })
    assert.deepEqual(parseConninfo('postgresql://h?'), { host: 'h' })
  })
  it("turns JDBC's ssl=true into sslmode=require", () => {
    assert.deepEqual(parseConninfo('postgresql://h/db?ssl=true'), { host: 'h', dbname: 'db', sslmode: 'require' })
  })
  it('fails as libpq does', () => {
    rejects(() => parseConninfo('postgresql://h/db?bogus=1'), 'invalid URI query parameter: "bogus"')
    rejects(() => parseConninfo('postgresql://h/db?sslmode'), 'missing key/value separator "=" in URI query parameter: "sslmode"')
    rejects(() => parseConninfo('postgresql://h/db?a=b=c'), 'extra key/value separator "=" in URI query parameter: "a=b=c"')
    rejects(() => parseConninfo('postgresql://h/d%zz'), 'invalid percent-encoded token: "d%zz"')
    rejects(() => parseConninfo('postgresql://h/d%00'), 'forbidden value %00 in percent-encoded value: "d%00"')
    rejects(
      () => parseConninfo('postgresql://[::1'),
      'end of string reached when looking for matching "]" in IPv6 host address in URI: "postgresql://[::1"',
    )
    rejects(() => parseConninfo('postgresql://[]/db'), 'IPv6 host address may not be empty in URI: "postgresql://[]/db"')
    rejects(() => parseConninfo('postgresql://[::1]x/db'), /^unexpected character "x" at position 19 in URI/)
  })
})

describe('the keyword list', () => {
  it("is libpq 18's, with servicefile and tty kept", () => {
    // PQconndefaults() of libpq 18.4, in order, plus servicefile (libpq 19) and tty (libpq 13).
    const libpq18 = [
      'service',
      'user',
      'password',
      'passfile',
      'channel_binding',
      'connect_timeout',
      'dbname',
      'host',
      'hostaddr',
      'port',
      'client_encoding',
      'options',
      'application_name',
      'fallback_application_name',
      'keepalives',
      'keepalives_idle',
      'keepalives_interval',
      'keepalives_count',
      'tcp_user_timeout',
      'sslmode',
      'sslnegotiation',
      'sslcompression',
      'sslcert',
      'sslkey',
      'sslcertmode',
      'sslpassword',
      'sslrootcert',
      'sslcrl',
      'sslcrldir',
      'sslsni',
      'requirepeer',
      'require_auth',
      'min_protocol_version',
      'max_protocol_version',
      'ssl_min_protocol_version',
      'ssl_max_protocol_version',
      'gssencmode',
      'krbsrvname',
      'gsslib',
      'gssdelegation',
      'replication',
      'target_session_attrs',
      'load_balance_hosts',
      'scram_client_key',
      'scram_server_key',
      'oauth_issuer',
      'oauth_client_id',
      'oauth_client_secret',
      'oauth_scope',
      'sslkeylogfile',
    ]
    assert.deepEqual(
      [...CONNINFO_KEYWORDS].filter((k) => k !== 'servicefile' && k !== 'tty'),
      libpq18,
    )
    assert.ok(isConninfoKeyword('target_session_attrs') && isConninfoKeyword('requiressl') && isConninfoKeyword('servicefile'))
    assert.ok(!isConninfoKeyword('authtype') && !isConninfoKeyword('primary') && !isConninfoKeyword('Host'))
  })
  it('reads no environment variable for sslkeylogfile, as libpq 18', () => {
    assert.equal(resolve('host=h', { PGSSLKEYLOGFILE: '/tmp/keys' }).endpoints.length, 1)
    rejects(() => resolve('host=h sslkeylogfile=/tmp/keys'), /^connection option "sslkeylogfile" is not supported by walrewind/)
  })
})

describe('quoteConninfoValue', () => {
  it('quotes as appendConnStrVal', () => {
    assert.equal(quoteConninfoValue('db_1.x'), 'db_1.x')
    assert.equal(quoteConninfoValue('/var/lib/postgresql/.pgpass'), "'/var/lib/postgresql/.pgpass'")
    assert.equal(quoteConninfoValue("a b\\'c"), "'a b\\\\\\'c'")
    assert.equal(quoteConninfoValue(''), "''")
  })
  it('round-trips through parseConninfo', () => {
    for (const v of ['plain', 'with space', "quote'", 'back\\slash', "all ' \\ of = them", 'ünï']) {
      assert.equal(parseConninfo(`password=${quoteConninfoValue(v)}`)['password'], v)
    }
  })
})

describe('password file', () => {
  const key = { host: 'db1', port: '5432', dbname: 'app', user: 'rewinder' }
  it('takes the first matching line, with * wildcards', () => {
    const text = [
      '# comment: db1:5432:app:rewinder:nope',
      'db2:5432:app:rewinder:other-host',
      'db1:5432:*:rewinder:first',
      '*:*:*:*:second',
    ].join('\n')
    assert.equal(lookupPassword(text, key), 'first')
    assert.equal(lookupPassword(text, { ...key, host: 'db9' }), 'second')
  })
  it('matches escaped colons and backslashes in fields and unescapes the password', () => {
    const text = 'db1:5432:my\\:db:rewinder:pa\\:ss\\\\word:ignored\r\n'
    assert.equal(lookupPassword(text, { ...key, dbname: 'my:db' }), 'pa:ss\\word')
    assert.equal(lookupPassword(text, key), null)
  })
  it('needs a * to match anything: an empty field matches only an empty token', () => {
    assert.equal(lookupPassword('db1::app:rewinder:x', key), null)
    assert.equal(lookupPassword('db1:*:app:rewinder:x', key), 'x')
    assert.equal(lookupPassword('db1*:5432:app:rewinder:x', key), null)
  })
  it('gives nothing without a database or user name, and for short lines', () => {
    assert.equal(lookupPassword('*:*:*:*:x', { ...key, dbname: '' }), null)
    assert.equal(lookupPassword('db1:5432:app', key), null)
  })
  it('an empty password is a password', () => {
    assert.equal(lookupPassword('*:*:*:*:', key), '')
  })
  it('maps an empty host and the default socket directory to localhost', () => {
    assert.equal(passfileHost('', '', '/tmp'), 'localhost')
    assert.equal(passfileHost('/tmp', '', '/tmp'), 'localhost')
    assert.equal(passfileHost('/var/run/postgresql', '', '/tmp'), '/var/run/postgresql')
    assert.equal(passfileHost('', '10.0.0.1', '/tmp'), '10.0.0.1')
    assert.equal(passfileHost('db1', '10.0.0.1', '/tmp'), 'db1')
  })
  it("ignores a group- or world-readable file with libpq's warning", () => {
    const file = writeFile('*:*:*:*:secret\n', 0o644)
    const warnings: string[] = []
    assert.equal(
      readPassfile(file, key, (w) => warnings.push(w)),
      null,
    )
    assert.deepEqual(warnings, [`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`])
    fs.chmodSync(file, 0o600)
    assert.equal(
      readPassfile(file, key, (w) => warnings.push(w)),
      'secret',
    )
    assert.equal(warnings.length, 1)
  })
  it('ignores a missing file silently and a directory with a warning', () => {
    const warnings: string[] = []
    assert.equal(
      readPassfile(path.join(tmp, 'nope'), key, (w) => warnings.push(w)),
      null,
    )
    assert.equal(
      readPassfile(tmp, key, (w) => warnings.push(w)),
      null,
    )
    assert.deepEqual(warnings, [`password file "${tmp}" is not a plain file`])
  })
})

describe('resolveConnection', () => {
  it("fills libpq's defaults: OS user, dbname = user, port 5432, the socket directory", () => {
    const r = resolve('')
    assert.equal(r.params['user'], 'osuser')
    assert.equal(r.params['dbname'], 'osuser')
    assert.equal(r.params['sslmode'], 'prefer')
    assert.equal(r.endpoints.length, 1)
    const e = r.endpoints[0]!
    assert.deepEqual(
      { host: e.host, port: e.port, isSocket: e.isSocket, description: e.description },
      { host: '/tmp', port: 5432, isSocket: true, description: '/tmp:5432' },
    )
    // Unix sockets never use TLS, whatever sslmode says.
    assert.equal(e.attempts.length, 1)
    assert.equal(e.attempts[0]!.config.ssl, false)
    assert.equal(e.attempts[0]!.config.host, '/tmp')
    assert.equal(e.attempts[0]!.config.fallback_application_name, 'walrewind')
  })
  it('takes PG* variables for what the string does not say, and an explicit empty value blocks them', () => {
    const env = {
      PGHOST: 'envhost',
      PGPORT: '6000',
      PGUSER: 'envuser',
      PGDATABASE: 'envdb',
      PGAPPNAME: 'envapp',
      PGOPTIONS: '-c work_mem=1MB',
      PGCONNECT_TIMEOUT: '7',
    }
    const r = resolve('port=6001', env)
    const c = r.endpoints[0]!.attempts[0]!.config
    assert.deepEqual(
      [c.host, c.port, c.user, c.database, c.application_name, c.options, c.connectionTimeoutMillis],
      ['envhost', 6001, 'envuser', 'envdb', 'envapp', '-c work_mem=1MB', 7000],
    )
    const blocked = resolve("host=''", env, { defaultSocketDir: '/sock' })
    assert.equal(blocked.endpoints[0]!.host, '/sock')
  })
  it('reads the service file for what the string and environment leave unset', () => {
    const file = writeFile('# services\n[other]\nport=1\n[ha]\nhost=svc-host\nport=7001\ndbname=svcdb\n[next]\nport=2\n')
    const r = resolve('service=ha dbname=mine', { PGSERVICEFILE: file })
    const c = r.endpoints[0]!.attempts[0]!.config
    assert.deepEqual([c.host, c.port, c.database], ['svc-host', 7001, 'mine'])
    assert.ok(!('service' in r.params))
    const viaEnv = resolve('', { PGSERVICEFILE: file, PGSERVICE: 'ha' })
    assert.equal(viaEnv.endpoints[0]!.port, 7001)
    rejects(() => resolve('service=missing', { PGSERVICEFILE: file, PGSYSCONFDIR: tmp }), 'definition of service "missing" not found')
    const bad = writeFile('[ha]\nbogus=1\n')
    rejects(() => resolve('service=ha', { PGSERVICEFILE: bad }), `syntax error in service file "${bad}", line 2`)
    const nested = writeFile('[ha]\nservice=x\n')
    rejects(
      () => resolve('service=ha', { PGSERVICEFILE: nested }),
      `nested "service" specifications not supported in service file "${nested}", line 2`,
    )
  })
  it('keeps several hosts in order, matching ports and hostaddrs position by position', () => {
    const r = resolve('host=h1,h2,h3 port=5433,,5435')
    assert.deepEqual(
      r.endpoints.map((e) => [e.host, e.port]),
      [
        ['h1', 5433],
        ['h2', 5432],
        ['h3', 5435],
      ],
    )
    const one = resolve('host=h1,h2 port=6000')
    assert.deepEqual(
      one.endpoints.map((e) => e.port),
      [6000, 6000],
    )
    const addr = resolve('host=db1,db2 hostaddr=10.0.0.1,10.0.0.2 sslmode=disable')
    assert.deepEqual(
      addr.endpoints.map((e) => [e.attempts[0]!.config.host, e.description]),
      [
        ['10.0.0.1', 'db1:5432'],
        ['10.0.0.2', 'db2:5432'],
      ],
    )
    rejects(() => resolve('host=h1,h2 port=1,2,3'), 'could not match 3 port numbers to 2 hosts')
    rejects(() => resolve('host=h1,h2 hostaddr=10.0.0.1'), 'could not match 2 host names to 1 hostaddr values')
    rejects(() => resolve('hostaddr=db1'), 'could not parse network address "db1": Name or service not known')
    rejects(() => resolve('port=x'), 'invalid integer value "x" for connection option "port"')
    rejects(() => resolve('port=70000'), 'invalid port number: "70000"')
  })
  it('maps connect_timeout as libpq (0 = the source default, 1 = 2 s)', () => {
    assert.equal(resolve('host=h connect_timeout=1').endpoints[0]!.attempts[0]!.config.connectionTimeoutMillis, 2000)
    assert.equal(
      resolve('host=h connect_timeout=0', {}, { defaultConnectTimeoutMs: 9000 }).endpoints[0]!.attempts[0]!.config.connectionTimeoutMillis,
      9000,
    )
    rejects(() => resolve('connect_timeout=soon'), 'invalid integer value "soon" for connection option "connect_timeout"')
  })
  it('validates choices and refuses what it cannot honour', () => {
    rejects(() => resolve('sslmode=maybe'), 'invalid sslmode value: "maybe"')
    rejects(() => resolve('target_session_attrs=any-old'), 'invalid target_session_attrs value: "any-old"')
    rejects(() => resolve('gssencmode=require'), /^gssencmode value "require" is not supported by walrewind: it has no GSSAPI support/)
    assert.equal(resolve('gssencmode=prefer').endpoints.length, 1)
    rejects(
      () => resolve('sslnegotiation=direct'),
      /^sslnegotiation value "direct" is not supported by walrewind: node-postgres always asks/,
    )
    rejects(() => resolve('requirepeer=postgres'), /^connection option "requirepeer" is not supported by walrewind: Node\.js cannot read/)
    rejects(
      () => resolve('oauth_issuer=https://x'),
      'connection option "oauth_issuer" is not supported by walrewind: node-postgres has no OAuth support',
    )
    rejects(() => resolve('client_encoding=LATIN1'), /^connection option "client_encoding" value "LATIN1" is not supported by walrewind/)
    rejects(() => resolve('', { PGCLIENTENCODING: 'sjis' }), /"client_encoding" value "sjis"/)
    for (const utf8 of ['UTF8', 'utf-8', 'Unicode', 'auto']) assert.equal(resolve(`client_encoding=${utf8}`).endpoints.length, 1)
    // GSSAPI authentication settings only matter when the server asks for GSSAPI, which the
    // session refuses by name (see server-session); tty and sslcompression have no effect in libpq either.
    assert.equal(resolve('krbsrvname=postgres gsslib=gssapi gssdelegation=0 tty=x sslcompression=1').endpoints.length, 1)
    assert.equal(resolve('target_session_attrs=prefer-standby').targetSessionAttrs, 'prefer-standby')
  })
  it('channel_binding: prefer (default) and require ask node-postgres for SCRAM-SHA-256-PLUS, disable does not', () => {
    const attempt = (text: string) => resolve(`host=h ${text}`).endpoints[0]!.attempts[0]!
    assert.equal(attempt('').config.enableChannelBinding, true)
    assert.equal(attempt('').channelBinding, 'prefer')
    assert.equal(attempt('channel_binding=require').config.enableChannelBinding, true)
    assert.equal(attempt('channel_binding=require').channelBinding, 'require')
    assert.equal(attempt('channel_binding=disable').config.enableChannelBinding, undefined)
    rejects(() => resolve('channel_binding=always'), 'invalid channel_binding value: "always"')
  })
  it('TCP keepalives as libpq: on by default, keepalives=0 off, keepalives_idle honoured; what Node.js cannot set is refused', () => {
    const config = (text: string) => resolve(`host=h ${text}`).endpoints[0]!.attempts[0]!.config
    assert.equal(config('').keepAlive, true)
    assert.equal(config('').keepAliveInitialDelayMillis, undefined)
    assert.equal(config('keepalives=0').keepAlive, false)
    assert.equal(config('keepalives_idle=7').keepAliveInitialDelayMillis, 7000)
    assert.equal(config('keepalives_idle=0').keepAliveInitialDelayMillis, undefined)
    // Node.js (libuv) probes every 1 s, 10 times: those values, or 0 (the system default), pass
    assert.equal(config('keepalives_interval=1 keepalives_count=10').keepAlive, true)
    assert.equal(config('keepalives_interval=0 keepalives_count=0').keepAlive, true)
    rejects(
      () => resolve('host=h keepalives_interval=30'),
      /^connection option "keepalives_interval" value "30" is not supported by walrewind: Node\.js sends TCP keepalive probes every 1 s/,
    )
    rejects(() => resolve('host=h keepalives_count=3'), /^connection option "keepalives_count" value "3" is not supported by walrewind/)
    // with keepalives off, libpq does not look at them
    assert.equal(config('keepalives=0 keepalives_interval=30 keepalives_count=3').keepAlive, false)
    rejects(() => resolve('host=h keepalives=yes'), 'invalid integer value "yes" for connection option "keepalives"')
    // tcp_user_timeout: 0 is the system default; anything else cannot be set from Node.js
    assert.equal(config('tcp_user_timeout=0').keepAlive, true)
    rejects(
      () => resolve('host=h tcp_user_timeout=5000'),
      /^connection option "tcp_user_timeout" value "5000" is not supported by walrewind: Node\.js cannot set TCP_USER_TIMEOUT/,
    )
    // libpq applies none of them to a Unix socket
    assert.equal(resolve('host=/tmp tcp_user_timeout=5000 keepalives_count=3').endpoints[0]!.isSocket, true)
    assert.equal(resolve('load_balance_hosts=random').loadBalance, true)
  })
})

describe('resolveConnection: passwords', () => {
  it('takes a given password (string or PGPASSWORD) over the password file', () => {
    const pass = writeFile('*:*:*:*:fromfile\n')
    const given = resolve('host=h password=inline', { PGPASSFILE: pass })
    assert.equal(given.endpoints[0]!.passwordSource, 'given')
    const fromEnv = resolve('host=h', { PGPASSFILE: pass, PGPASSWORD: 'envpw' })
    assert.equal(fromEnv.endpoints[0]!.passwordSource, 'given')
    const fromFile = resolve('host=h', { PGPASSFILE: pass })
    assert.equal(fromFile.endpoints[0]!.passwordSource, 'passfile')
    const pw = fromFile.endpoints[0]!.attempts[0]!.config.password as () => string
    assert.equal(pw(), 'fromfile')
  })
  it('reads ~/.pgpass by default, per host, and matches a default-socket connection as localhost', () => {
    const home = emptyHome()
    fs.writeFileSync(path.join(home, '.pgpass'), 'localhost:5432:*:*:sock\nh2:5432:*:*:two\n', { mode: 0o600 })
    const r = resolve('host=/tmp,h1,h2 user=u dbname=d', {}, { homeDir: home, defaultSocketDir: '/tmp' })
    assert.deepEqual(
      r.endpoints.map((e) => e.passwordSource),
      ['passfile', null, 'passfile'],
    )
    assert.equal(r.params['passfile'], path.join(home, '.pgpass'))
  })
  it("without a password, a server asking for one gets libpq's refusal", () => {
    const pw = resolve('host=h').endpoints[0]!.attempts[0]!.config.password as () => string
    assert.throws(pw, /fe_sendauth: no password supplied/)
  })
  it('warns once about an insecure password file', () => {
    const pass = writeFile('*:*:*:*:x\n', 0o640)
    const r = resolve('host=h1,h2', { PGPASSFILE: pass })
    assert.deepEqual(r.warnings, [`password file "${pass}" has group or world access; permissions should be u=rw (0600) or less`])
    assert.deepEqual(
      r.endpoints.map((e) => e.passwordSource),
      [null, null],
    )
  })
})

describe('resolveConnection: TLS', () => {
  const tlsOf = (attempt: { config: { ssl?: unknown } }) => attempt.config.ssl as ConnectionOptions
  it('maps disable, allow, prefer and require onto attempts', () => {
    assert.deepEqual(
      resolve('host=h sslmode=disable').endpoints[0]!.attempts.map((a) => a.ssl),
      [false],
    )
    assert.deepEqual(
      resolve('host=h sslmode=allow').endpoints[0]!.attempts.map((a) => a.ssl),
      [false, true],
    )
    assert.deepEqual(
      resolve('host=h').endpoints[0]!.attempts.map((a) => a.ssl),
      [true, false],
    )
    const req = resolve('host=h sslmode=require').endpoints[0]!.attempts
    assert.deepEqual(
      req.map((a) => a.ssl),
      [true],
    )
    assert.equal(tlsOf(req[0]!).rejectUnauthorized, false)
    assert.equal(tlsOf(req[0]!).minVersion, undefined)
    assert.equal(tlsOf(resolve('host=h sslmode=require ssl_min_protocol_version=TLSv1.3').endpoints[0]!.attempts[0]!).minVersion, 'TLSv1.3')
  })
  it('verify-ca and verify-full read the root certificate; verify-ca skips the host name check', () => {
    const ca = writeFile('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', 0o644)
    const vca = tlsOf(resolve(`host=h sslmode=verify-ca sslrootcert=${ca}`).endpoints[0]!.attempts[0]!)
    assert.equal(vca.rejectUnauthorized, true)
    assert.equal(String(vca.ca), fs.readFileSync(ca, 'utf8'))
    assert.equal(vca.checkServerIdentity!('h', {} as never), undefined)
    const vfull = tlsOf(resolve(`host=db.example.com sslmode=verify-full sslrootcert=${ca}`).endpoints[0]!.attempts[0]!)
    const wrong = vfull.checkServerIdentity!('db.example.com', {
      subject: { CN: 'other.example.com' },
      subjectaltname: 'DNS:other.example.com',
    } as never)
    assert.ok(wrong instanceof Error)
    const right = vfull.checkServerIdentity!('ignored', {
      subject: { CN: 'db.example.com' },
      subjectaltname: 'DNS:db.example.com',
    } as never)
    assert.equal(right, undefined)
  })
  it('a root certificate in ~/.postgresql turns require into verify-ca, as in libpq', () => {
    const home = emptyHome()
    fs.mkdirSync(path.join(home, '.postgresql'))
    fs.writeFileSync(path.join(home, '.postgresql', 'root.crt'), 'CA')
    const t = tlsOf(resolve('host=h sslmode=require', {}, { homeDir: home }).endpoints[0]!.attempts[0]!)
    assert.equal(t.rejectUnauthorized, true)
    assert.equal(String(t.ca), 'CA')
  })
  it('refuses verification without a root certificate, and weak modes with sslrootcert=system', () => {
    rejects(() => resolve('host=h sslmode=verify-full'), /^root certificate file ".*root\.crt" does not exist$/)
    rejects(
      () => resolve('host=h sslmode=require sslrootcert=system'),
      'weak sslmode "require" may not be used with sslrootcert=system (use "verify-full")',
    )
    const sys = resolve('host=h sslrootcert=system')
    assert.equal(sys.params['sslmode'], 'verify-full')
    assert.equal(tlsOf(sys.endpoints[0]!.attempts[0]!).ca, undefined)
  })
  it("sends a client certificate with its key, checking the key's permissions", () => {
    const cert = writeFile('CERT', 0o644)
    const key = writeFile('KEY', 0o600)
    const t = tlsOf(resolve(`host=h sslmode=require sslcert=${cert} sslkey=${key} sslpassword=pp`).endpoints[0]!.attempts[0]!)
    assert.deepEqual([String(t.cert), String(t.key), t.passphrase], ['CERT', 'KEY', 'pp'])
    const openKey = writeFile('KEY', 0o644)
    if (process.getuid?.() !== 0) {
      rejects(() => resolve(`host=h sslmode=require sslcert=${cert} sslkey=${openKey}`), /^private key file ".*" has group or world access/)
    }
    const none = tlsOf(resolve(`host=h sslmode=require sslcertmode=disable sslcert=${cert} sslkey=${key}`).endpoints[0]!.attempts[0]!)
    assert.equal(none.cert, undefined)
    rejects(
      () => resolve(`host=h sslmode=require sslcert=${cert} sslkey=${path.join(tmp, 'nokey')}`),
      /^certificate present, but not private key file/,
    )
  })
  it('goes on without a client certificate when the named sslcert is not there, as libpq', () => {
    const missing = tlsOf(
      resolve(`host=h sslmode=require sslcert=${path.join(tmp, 'no-such.crt')} sslkey=${path.join(tmp, 'no-such.key')}`).endpoints[0]!
        .attempts[0]!,
    )
    assert.equal(missing.cert, undefined)
    assert.equal(missing.key, undefined)
    const underFile = tlsOf(resolve(`host=h sslmode=require sslcert=${writeFile('x')}/client.crt`).endpoints[0]!.attempts[0]!)
    assert.equal(underFile.cert, undefined)
  })
  it('names the host for SNI and verification when connecting by hostaddr', () => {
    const ca = writeFile('CA', 0o644)
    const a = resolve(`host=db.example.com hostaddr=10.1.2.3 sslmode=verify-full sslrootcert=${ca}`).endpoints[0]!.attempts[0]!
    assert.equal(a.config.host, '10.1.2.3')
    assert.equal(tlsOf(a).servername, 'db.example.com')
  })
  it('sslsni=0: no SNI when connecting by address; refused for a host name, which node-postgres always sends', () => {
    const ca = writeFile('CA', 0o644)
    const a = resolve(`host=db.example.com hostaddr=10.1.2.3 sslmode=verify-full sslrootcert=${ca} sslsni=0`).endpoints[0]!.attempts[0]!
    assert.equal(tlsOf(a).servername, undefined)
    assert.equal(resolve('host=10.1.2.3 sslmode=require sslsni=0').endpoints[0]!.attempts.length, 1)
    assert.equal(resolve('host=db.example.com sslmode=disable sslsni=0').endpoints[0]!.attempts.length, 1)
    rejects(
      () => resolve('host=db.example.com sslmode=require sslsni=0'),
      /^connection option "sslsni" value "0" is not supported by walrewind for host "db\.example\.com"/,
    )
  })
})

describe('formatPrimaryConninfo', () => {
  // pg_rewind 15 -R, Debian libpq 15.18, run by a user whose HOME is /var/lib/postgresql, wrote:
  //   user=postgres passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host=127.0.0.1
  //   port=55415 sslmode=prefer sslcompression=0 sslsni=1 ssl_min_protocol_version=TLSv1.2
  //   gssencmode=prefer krbsrvname=postgres target_session_attrs=any
  // walrewind keeps the same keywords in the same order, without libpq's compiled defaults.
  const home = '/var/lib/postgresql'
  it('matches pg_rewind -R for a plain TCP connection, minus compiled defaults', () => {
    const r = resolve('host=127.0.0.1 port=55415 user=postgres', {}, { homeDir: home })
    assert.equal(formatPrimaryConninfo(r), "user=postgres passfile='/var/lib/postgresql/.pgpass' host=127.0.0.1 port=55415")
  })
  it('includes a given password (and then no passfile), quoting as libpq', () => {
    // pg_rewind 15: user=postgres password='a b\'c' channel_binding=prefer connect_timeout=5
    //   host=127.0.0.1 port=55415 application_name=x sslmode=disable sslcompression=0 ...
    const r = resolve(
      "host=127.0.0.1 port=55415 user=postgres dbname=postgres application_name=x password='a b\\'c' connect_timeout=5 sslmode=disable",
      {},
      { homeDir: home },
    )
    assert.equal(
      formatPrimaryConninfo(r),
      "user=postgres password='a b\\'c' connect_timeout=5 host=127.0.0.1 port=55415 application_name=x sslmode=disable",
    )
  })
  it('matches pg_rewind -R for a socket directory', () => {
    // pg_rewind 15: user=postgres passfile='/var/lib/postgresql/.pgpass' channel_binding=prefer host='/tmp/srvscratch' port=55415 sslmode=prefer ...
    const r = resolve('port=55415 user=postgres host=/tmp/srvscratch', {}, { homeDir: home })
    assert.equal(formatPrimaryConninfo(r), "user=postgres passfile='/var/lib/postgresql/.pgpass' host='/tmp/srvscratch' port=55415")
  })
  it("reports settings from the environment, never the password file's password nor the walrewind fallback name", () => {
    const pass = writeFile('*:*:*:*:fromfile\n')
    const r = resolve('host=h', { PGPASSFILE: pass, PGUSER: 'rw', PGSSLMODE: 'require', PGAPPNAME: 'patroni' })
    assert.equal(formatPrimaryConninfo(r), `user=rw passfile='${pass}' host=h port=5432 application_name=patroni sslmode=require`)
  })
  it('appends a given dbname only when asked (pg_rewind 18)', () => {
    const r = resolve('host=h dbname=app user=u', {}, { homeDir: home })
    assert.equal(
      formatPrimaryConninfo(r, { includeDbname: true }),
      "user=u passfile='/var/lib/postgresql/.pgpass' host=h port=5432 dbname=app",
    )
    assert.equal(formatPrimaryConninfo(r), "user=u passfile='/var/lib/postgresql/.pgpass' host=h port=5432")
    const derived = resolve('host=h user=u', {}, { homeDir: home })
    assert.equal(formatPrimaryConninfo(derived, { includeDbname: true }), "user=u passfile='/var/lib/postgresql/.pgpass' host=h port=5432")
  })
  it("orders keywords as libpq 18's PQconninfoOptions", () => {
    const r = resolve('host=h user=u ssl_min_protocol_version=TLSv1.2 min_protocol_version=3.0 sslmode=require', {}, { homeDir: home })
    assert.equal(
      formatPrimaryConninfo(r),
      "user=u passfile='/var/lib/postgresql/.pgpass' host=h port=5432 sslmode=require min_protocol_version=3.0 ssl_min_protocol_version=TLSv1.2",
    )
  })
  it('keeps a host list whole, as PQconninfo does', () => {
    const r = resolve('host=h1,h2 port=5433,5434 user=u target_session_attrs=read-write', {}, { homeDir: home })
    assert.equal(
      formatPrimaryConninfo(r),
      "user=u passfile='/var/lib/postgresql/.pgpass' host='h1,h2' port='5433,5434' target_session_attrs='read-write'",
    )
  })
})
