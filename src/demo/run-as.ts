// Who runs the demo's servers. PostgreSQL refuses to run as root, and the demo never creates an OS
// user: started by an ordinary user it runs everything as that user; started as root, as
//   1. --os-user=NAME (an existing user other than root),
//   2. the user who started it through sudo ($SUDO_USER),
//   3. the system user "walrewind" if there is one (the account walrewind's test suite runs as);
// and otherwise says so and stops. That user must be able to read walrewind and PostgreSQL's
// programs; this is checked first.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import type { OsUser } from './files.js'

export const WALREWIND_OS_USER = 'walrewind'

export type RunAsResult = { ok: true; user: OsUser | null; why: string | null } | { ok: false; message: string }

/** The user's passwd entry: getent (which asks NSS too), else /etc/passwd. */
function lookupUser(name: string): OsUser | null {
  let line: string | undefined
  for (const getent of ['getent', '/usr/bin/getent', '/bin/getent']) {
    const result = spawnSync(getent, ['passwd', name], { encoding: 'utf8' })
    if (result.error) continue // not found there
    line = result.status === 0 ? result.stdout.trim().split('\n')[0] : undefined
    break
  }
  if (line === undefined) {
    try {
      line = fs
        .readFileSync('/etc/passwd', 'utf8')
        .split('\n')
        .find((l) => l.startsWith(`${name}:`))
    } catch {
      return null
    }
  }
  if (line === undefined) return null
  const fields = line.split(':')
  const uid = Number(fields[2])
  const gid = Number(fields[3])
  return fields[0] === name && Number.isInteger(uid) && Number.isInteger(gid) ? { name, uid, gid } : null
}

export function demoUser(osUser: string | null, env: NodeJS.ProcessEnv): RunAsResult {
  const root = process.getuid?.() === 0
  if (!root) {
    if (osUser !== null) return { ok: false, message: '--os-user is for running the demo as root; it runs as you already' }
    return { ok: true, user: null, why: null }
  }
  if (osUser !== null) {
    const user = lookupUser(osUser)
    if (user === null) return { ok: false, message: `--os-user=${osUser}: there is no such user` }
    if (user.uid === 0) return { ok: false, message: `--os-user=${osUser}: PostgreSQL does not run as root` }
    return { ok: true, user, why: `as ${user.name} (--os-user)` }
  }
  const sudoUser = env['SUDO_USER']
  if (sudoUser) {
    const user = lookupUser(sudoUser)
    if (user !== null && user.uid !== 0) return { ok: true, user, why: `as ${user.name}, who started it with sudo` }
  }
  const own = lookupUser(WALREWIND_OS_USER)
  if (own !== null && own.uid !== 0) return { ok: true, user: own, why: `as the system user ${own.name}` }
  return {
    ok: false,
    message:
      'running as root, and PostgreSQL does not run as root. Run the demo as an ordinary user, ' +
      'or from one with sudo, or name one with --os-user=NAME (the demo creates no user; ' +
      `a system user named ${WALREWIND_OS_USER} is used when there is one).`,
  }
}

/** The paths of `needs` that `user` cannot access as asked (-r read, -x execute or enter). */
export function inaccessible(user: OsUser, needs: Array<['-r' | '-x', string]>): string[] {
  return needs
    .filter(([flag, file]) => {
      const result = spawnSync('/bin/sh', ['-c', 'test "$1" "$2"', 'sh', flag, file], { uid: user.uid, gid: user.gid, cwd: '/' })
      return result.status !== 0
    })
    .map(([, file]) => file)
}
