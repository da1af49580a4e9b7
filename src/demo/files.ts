// Directories and files made for the OS user the clusters run as: when walrewind runs as root,
// PostgreSQL runs as another user, who must own what it writes to. Shared with the test kit
// (test/kit/os-user.ts).

import fs from 'node:fs'

/** The OS user servers (and walrewind itself) run as; null means the current user. */
export interface OsUser {
  name: string
  uid: number
  gid: number
}

/** Makes a path this process created belong to `user` (no-op for the current user). */
export function giveToUser(file: string, user: OsUser | null): void {
  if (user) fs.lchownSync(file, user.uid, user.gid)
}

/** Creates a directory (mode 0700 unless told) owned by `user`. */
export function makeUserDir(dir: string, user: OsUser | null, mode = 0o700): void {
  fs.mkdirSync(dir, { mode })
  fs.chmodSync(dir, mode)
  giveToUser(dir, user)
}

/** Writes a file owned by `user` (mode 0600 unless told). */
export function writeUserFile(file: string, data: string | Buffer, user: OsUser | null, mode = 0o600): void {
  fs.writeFileSync(file, data, { mode })
  giveToUser(file, user)
}
