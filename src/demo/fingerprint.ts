// What a cluster holds, in a form two nodes can be compared by: after a rewind, the rewound node
// must hold what its new primary holds. Only reads, so it works on a hot standby; unlogged tables
// are left out because a standby cannot read them. Used by `walrewind demo` and the test kit
// (test/kit/fingerprint.ts).

/** What is read: a node (or anything) that runs a query in a database. */
export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[], opts?: { dbname?: string }): Promise<T[]>
}

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
export async function databases(node: Queryable): Promise<string[]> {
  const rows = await node.query<{ datname: string }>(
    "select datname from pg_database where datname <> 'template0' and datallowconn order by datname",
  )
  return rows.map((row) => row.datname)
}

export async function fingerprint(node: Queryable): Promise<Fingerprint> {
  const names = await databases(node)
  const tables: Fingerprint['tables'] = {}
  for (const dbname of names) {
    const list = await node.query<{ schema: string; name: string }>(USER_TABLES, [], { dbname })
    for (const { schema, name } of list) {
      // The hash of the sorted per-row hashes: independent of physical row order, which differs
      // between nodes after a rewind even when the contents agree.
      const [row] = await node.query<{ rows: string; hash: string }>(
        `select count(*) as rows, md5(coalesce(string_agg(h, '' order by h), '')) as hash
         from (select md5(t::text) as h from ${quoteIdent(schema)}.${quoteIdent(name)} t) s`,
        [],
        { dbname },
      )
      tables[`${dbname}.${schema}.${name}`] = { rows: Number(row?.rows), hash: row?.hash ?? '' }
    }
  }
  return { databases: names, tables }
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`
}
