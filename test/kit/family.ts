// The 4-node family walrewind exists for: node1 primary; node2 and node3 standbys of node1; node4 a
// cascading standby of node2. node2 is promoted (timeline 2, node4 follows it), node1 keeps writing,
// then node3 (timeline 3) and node4 (timeline 4) are promoted, and every node writes its own
// history. The story is `walrewind demo`'s (src/demo/family.ts); here on the kit's nodes, for the
// end-to-end family test.

import { buildFamily as build, type FamilyName, type FamilyOptions } from '../../src/demo/family.js'
import type { Kit } from './kit.js'
import type { Major } from './majors.js'
import type { Node } from './node.js'

export { FAMILY_NAMES, REWIND_GRANTS, REWIND_ROLE, type FamilyName, type FamilyOptions } from '../../src/demo/family.js'

export type Family = Record<FamilyName, Node>

/** Builds the family; every node is left running. */
export function buildFamily(kit: Kit, major: Major, opts: FamilyOptions = {}): Promise<Family> {
  return build(kit, major, opts)
}
