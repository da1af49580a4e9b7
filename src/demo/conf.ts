// postgresql.conf and pg_hba.conf as the demo's clusters (and the test kit's, test/kit/conf.ts)
// are written. Settings are appended, so the last occurrence wins, as in PostgreSQL itself; they are
// never edited in place.

export type Settings = Record<string, string | number | boolean>

/** One `name = value` line; strings are single-quoted with quotes doubled. */
export function formatSetting(name: string, value: string | number | boolean): string {
  if (!/^[A-Za-z_][A-Za-z0-9_.]*$/.test(name)) throw new Error(`invalid setting name ${JSON.stringify(name)}`)
  if (typeof value === 'boolean') return `${name} = ${value ? 'on' : 'off'}`
  if (typeof value === 'number') return `${name} = ${value}`
  return `${name} = '${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

export function formatSettings(settings: Settings, heading: string): string {
  const lines = Object.entries(settings).map(([name, value]) => formatSetting(name, value))
  return `\n# ${heading}\n${lines.join('\n')}\n`
}

/**
 * Settings of every demo and test cluster, chosen for speed on a small machine and for what rewinds
 * need: WAL kept around (wal_keep_size, as pg_rewind's own tests do), standbys readable, no
 * background activity that would make runs differ (autovacuum, timed checkpoints).
 */
export const BASE_SETTINGS: Settings = {
  listen_addresses: '127.0.0.1',
  fsync: false,
  shared_buffers: '16MB',
  max_connections: 40,
  max_wal_senders: 10,
  max_replication_slots: 10,
  wal_keep_size: '320MB',
  hot_standby: true,
  autovacuum: false,
  checkpoint_timeout: '1h',
  max_wal_size: '1GB',
  // A standby that lost its upstream (promotion, restart) retries after this instead of 5 s.
  wal_retrieve_retry_interval: '200ms',
  logging_collector: false,
  log_line_prefix: '%m [%p] %q%a ',
  log_checkpoints: true,
  lc_messages: 'C',
  // 14+'s default; on 13 too, so a test's scram-sha-256 pg_hba.conf line works on every major.
  password_encryption: 'scram-sha-256',
  timezone: 'UTC',
  log_timezone: 'UTC',
}

/** The clusters' own pg_hba.conf lines: trust from the unix socket and 127.0.0.1 only. */
export const BASE_HBA = [
  'local all all trust',
  'host all all 127.0.0.1/32 trust',
  'local replication all trust',
  'host replication all 127.0.0.1/32 trust',
]
