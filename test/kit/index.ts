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
