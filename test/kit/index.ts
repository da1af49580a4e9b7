// The real-cluster test kit: what test files import. Every test runs against real PostgreSQL
// servers of each major (no mocks), started as an unprivileged OS user, and stopped by pid file.
// The API here is a contract shared by every test writer: add members, never rename or drop one.

export { ALL_MAJORS, binDir, majorsUnderTest, PROJECT_ROOT, type Major } from './majors.js'
export { Kit, testRoot, type InitOptions, type StandbyOptions } from './kit.js'
export { Node, type QueryOptions } from './node.js'
export { checkIndexes, fingerprint, installAmcheck, type Fingerprint } from './fingerprint.js'
export type { RunOptions, RunResult } from './runner.js'
export type { Settings } from './conf.js'
export type { OsUser } from './os-user.js'
export { formatLsn, parseLsn } from './lsn.js'
export { buildFamily, FAMILY_NAMES, REWIND_GRANTS, REWIND_ROLE, type Family, type FamilyName } from './family.js'

// Running as root, the kit's OS user exists from the moment a test imports the kit (not only once
// a Kit is created): a walrewind a test starts as root itself, `walrewind demo`, runs PostgreSQL as
// that existing user (it never creates one; see src/demo/run-as.ts).
import { pgOsUser } from './os-user.js'
if (process.getuid?.() === 0) {
  try {
    pgOsUser()
  } catch {
    // Kit.create reports it
  }
}
