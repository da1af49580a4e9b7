// The password file (~/.pgpass, PGPASSFILE), read with libpq's rules: lines of
// host:port:database:user:password, `*` matching anything, `\` escaping `:` and `\`, the first
// matching line winning. As in libpq, a file that others can read is ignored with a warning
// rather than trusted: a password in a world-readable file is already somebody else's.

import fs from 'node:fs'

/** What a password file line is matched against, as libpq's passwordFromFile gets it. */
export interface PassfileKey {
  readonly host: string
  readonly port: string
  readonly dbname: string
  readonly user: string
}

/**
 * The host name the password file is searched with: the host as given (or hostaddr when only that
 * was given), and `localhost` for a socket connection to the default socket directory.
 */
export function passfileHost(host: string, hostaddr: string, defaultSocketDir: string): string {
  if (host === '') return hostaddr === '' ? 'localhost' : hostaddr
  if (host.startsWith('/') && host === defaultSocketDir) return 'localhost'
  return host
}

/**
 * Matches one field at the start of `line` against `token`; returns where the next field starts,
 * or -1. A field that is exactly `*` matches anything (pwdfMatchesString in fe-connect.c).
 */
function matchField(line: string, at: number, token: string): number {
  if (line[at] === '*' && line[at + 1] === ':') return at + 2
  let i = at
  let t = 0
  while (i < line.length) {
    let escaped = false
    if (line[i] === '\\' && i + 1 < line.length) {
      i++
      escaped = true
    }
    if (line[i] === ':' && !escaped && t === token.length) return i + 1
    if (t === token.length || line[i] !== token[t]) return -1
    i++
    t++
  }
  return -1
}

/** The password field: up to the next unescaped `:`, with `\x` turned into `x`. */
function unescapePassword(rest: string): string {
  let out = ''
  for (let i = 0; i < rest.length && rest[i] !== ':'; i++) {
    if (rest[i] === '\\' && i + 1 < rest.length) i++
    out += rest[i]
  }
  return out
}

/** The password of the first line of `text` that matches `key`, or null. Pure; see readPassfile. */
export function lookupPassword(text: string, key: PassfileKey): string | null {
  // libpq gives up without a database or user name rather than matching `*` against nothing.
  if (key.dbname === '' || key.user === '') return null
  for (const raw of text.split('\n')) {
    if (raw.startsWith('#')) continue
    const line = raw.replace(/\r+$/, '')
    if (line === '') continue
    let at = 0
    for (const token of [key.host, key.port, key.dbname, key.user]) {
      at = matchField(line, at, token)
      if (at < 0) break
    }
    if (at >= 0) return unescapePassword(line.slice(at))
  }
  return null
}

/**
 * Looks `key` up in the password file at `file`. A missing file is no error; a file that is not
 * a plain file, or that group or others may access, is ignored with libpq's warning.
 */
export function readPassfile(file: string, key: PassfileKey, warn: (message: string) => void): string | null {
  if (key.dbname === '' || key.user === '') return null
  let st: fs.Stats
  try {
    st = fs.statSync(file)
  } catch {
    return null
  }
  if (!st.isFile()) {
    warn(`password file "${file}" is not a plain file`)
    return null
  }
  if ((st.mode & 0o077) !== 0) {
    warn(`password file "${file}" has group or world access; permissions should be u=rw (0600) or less`)
    return null
  }
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch {
    return null
  }
  return lookupPassword(text, key)
}
