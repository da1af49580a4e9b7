// What a cluster holds, in a form two nodes can be compared by (assert.deepEqual), and an index
// check for after a rewind. Both only read (checkIndexes may create amcheck on a primary), so they
// work on a hot standby; unlogged tables are left out because a standby cannot read them.

import type { Node } from './node.js'

export interface Fingerprint {
  /** datnames except template0, sorted. */
  databases: string[]
  /** Key "db.schema.table": logged ordinary and partitioned user tables only. */
  tables: Record<string, { rows: number; hash: string }>
}

const USER_TABLES = `
  select n.nspname as schema, c.relname as name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p') and c.relpersistence = 'p'
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname !~ '^pg_(toast|temp_|toast_temp_)'
  order by 1, 2`

/** Databases that can be connected to, except template0. */
async function databases(node: Node): Promise<string[]> {
  const rows = await node.query<{ datname: string }>(
    "select datname from pg_database where datname <> 'template0' and datallowconn order by datname")
  return rows.map((row) => row.datname)
}

export async function fingerprint(node: Node): Promise<Fingerprint> {
  const names = await databases(node)
  const tables: Fingerprint['tables'] = {}
  for (const dbname of names) {
    const list = await node.query<{ schema: string; name: string }>(USER_TABLES, [], { dbname })
    for (const { schema, name } of list) {
      // The hash of the sorted per-row hashes: independent of physical row order, which differs
      // between nodes after a rewind even when the contents agree.
      const [row] = await node.query<{ rows: string; hash: string }>(
        `select count(*) as rows, md5(coalesce(string_agg(h, '' order by h), '')) as hash
         from (select md5(t::text) as h from ${quoteIdent(schema)}.${quoteIdent(name)} t) s`, [], { dbname })
      tables[`${dbname}.${schema}.${name}`] = { rows: Number(row?.rows), hash: row?.hash ?? '' }
    }
  }
  return { databases: names, tables }
}

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
    const installed = await node.queryValue<boolean>(
      "select exists (select from pg_extension where extname = 'amcheck')", [], { dbname })
    if (!installed && inRecovery) {
      throw new Error(`node ${node.name}: checkIndexes: amcheck is not installed in database "${dbname}" and ` +
        'the node is in recovery; call installAmcheck() on its primary first')
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

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
