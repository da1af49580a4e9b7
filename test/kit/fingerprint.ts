// What a cluster holds, in a form two nodes can be compared by (assert.deepEqual), and an index
// check for after a rewind. Both only read (checkIndexes may create amcheck on a primary), so they
// work on a hot standby; unlogged tables are left out because a standby cannot read them.

import { databases, fingerprint, type Fingerprint } from '../../src/demo/fingerprint.js'
import type { Node } from './node.js'

// The fingerprint is `walrewind demo`'s (src/demo/fingerprint.ts).
export { fingerprint, type Fingerprint }

// One anonymous block per database rather than a round trip per index (a cluster has ~150 catalog
// indexes per database). DO blocks run on a hot standby too. Unlogged indexes have no main fork to
// check during recovery.
const CHECK_ALL_BTREES = `
do $check$
declare
  r record;
  problems text := '';
begin
  for r in
    select c.oid, c.oid::regclass::text as name
    from pg_index i join pg_class c on c.oid = i.indexrelid join pg_am a on a.oid = c.relam
    where a.amname = 'btree' and i.indisvalid and i.indisready and c.relpersistence <> 't'
      and (not pg_is_in_recovery() or c.relpersistence = 'p')
    order by c.oid
  loop
    begin
      perform bt_index_check(r.oid::regclass, true);
    exception when others then
      problems := problems || E'\n  ' || r.name || ': ' || sqlerrm;
    end;
  end loop;
  if problems <> '' then
    raise exception 'corrupt indexes:%', problems;
  end if;
end
$check$`

/**
 * bt_index_check(index, heapallindexed) on every valid btree index of every database, catalogs
 * included. On a primary amcheck is created where missing and dropped again afterwards; a standby
 * needs it in every database beforehand (installAmcheck on its primary).
 */
export async function checkIndexes(node: Node): Promise<void> {
  const inRecovery = await node.queryValue<boolean>('select pg_is_in_recovery()')
  const problems: string[] = []
  for (const dbname of await databases(node)) {
    const installed = await node.queryValue<boolean>("select exists (select from pg_extension where extname = 'amcheck')", [], { dbname })
    if (!installed && inRecovery) {
      throw new Error(
        `node ${node.name}: checkIndexes: amcheck is not installed in database "${dbname}" and ` +
          'the node is in recovery; call installAmcheck() on its primary first',
      )
    }
    if (!installed) await node.query('create extension amcheck', [], { dbname })
    try {
      await node.query(CHECK_ALL_BTREES, [], { dbname })
    } catch (err) {
      problems.push(`database "${dbname}": ${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message}`)
    } finally {
      if (!installed) await node.query('drop extension amcheck', [], { dbname })
    }
  }
  if (problems.length > 0) {
    throw new Error(`node ${node.name}: checkIndexes: corrupt indexes in ${problems.length} database(s):\n${problems.join('\n')}`)
  }
}

/** Creates amcheck in every database of a primary (template1 too, so later databases have it). */
export async function installAmcheck(node: Node): Promise<void> {
  for (const dbname of await databases(node)) {
    await node.query('create extension if not exists amcheck', [], { dbname })
  }
}
