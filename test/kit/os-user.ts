// The OS user servers and walrewind run as. PostgreSQL refuses to run as root and CI runs as
// root, so under root everything runs as the unprivileged user `walrewind` (created on first use);
// otherwise as the current user. Files the root test process creates for that user go through
// giveToUser so the servers can read them.

import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { ALL_MAJORS, PROJECT_ROOT } from './majors.js'

import type { OsUser } from '../../src/demo/files.js'

export type { OsUser }

export const OS_USER_NAME = 'walrewind'

let cached: OsUser | null | undefined

/** The user to run servers as: null means the current (non-root) user. Creates it if needed. */
export function pgOsUser(): OsUser | null {
  if (cached !== undefined) return cached
  if (process.getuid?.() !== 0) {
    cached = null
    return cached
  }
  const user = lookupUser(OS_USER_NAME) ?? createUser(OS_USER_NAME)
  checkProjectReadable(user)
  cached = user
  return cached
}

function lookupUser(name: string): OsUser | null {
  const result = spawnSync('getent', ['passwd', name], { encoding: 'utf8' })
  if (result.status !== 0) return null
  const fields = result.stdout.trim().split(':')
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) }
}

function createUser(name: string): OsUser {
  // Test files run in parallel processes: another one may be creating the same user right now
  // (useradd then fails on the passwd lock or on the existing name), so look again and retry.
  let lastError = ''
  for (let attempt = 0; attempt < 20; attempt++) {
    const result = spawnSync(
      'useradd',
      ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name],
      { encoding: 'utf8' },
    )
    const user = lookupUser(name)
    if (user) return user
    lastError = `${result.error?.message ?? ''}${result.stderr}`.trim()
    spawnSync('sleep', ['0.2'])
  }
  throw new Error(
    `test kit: running as root, and could not create the OS user "${name}" that runs the ` + `PostgreSQL servers: ${lastError}`,
  )
}

/** Fails loudly if `user` cannot read what it has to run: node, the checkout's bin, dist, binaries. */
function checkProjectReadable(user: OsUser): void {
  const needs: Array<['-r' | '-x', string]> = [
    ['-x', process.execPath],
    ['-r', path.join(PROJECT_ROOT, 'bin', 'walrewind.js')],
    ['-r', path.join(PROJECT_ROOT, 'package.json')],
  ]
  const dist = path.join(PROJECT_ROOT, 'dist', 'src')
  if (fs.existsSync(dist)) needs.push(['-x', dist])
  for (const major of ALL_MAJORS) {
    const postgres = path.join(PROJECT_ROOT, 'node_modules', `pg${major}`, 'native', 'bin', 'postgres')
    if (fs.existsSync(postgres)) needs.push(['-x', postgres])
  }
  const failed = needs
    .filter(([flag, file]) => {
      const result = spawnSync('/bin/sh', ['-c', 'test "$1" "$2"', 'sh', flag, file], { uid: user.uid, gid: user.gid, cwd: '/' })
      return result.status !== 0
    })
    .map(([, file]) => file)
  if (failed.length > 0) {
    throw new Error(
      `test kit: the OS user "${user.name}" (uid ${user.uid}) that runs PostgreSQL and walrewind ` +
        `cannot read: ${failed.join(', ')}. Make the checkout and node readable by others ` +
        `(e.g. chmod -R o+rX ${PROJECT_ROOT} and every parent directory).`,
    )
  }
}

// Files the root test process creates for that user: the helpers `walrewind demo` uses too.
export { giveToUser, makeUserDir, writeUserFile } from '../../src/demo/files.js'
