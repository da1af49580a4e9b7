// Settings read from a data directory's own configuration files, as PostgreSQL would read them.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, test } from 'node:test'
import { lastSetting, parseMemorySetting, readDataDirSetting } from '../../src/pg/conf-file.js'

describe('configuration files', () => {
  test('the last line naming the setting wins; comments, quotes and the = are as PostgreSQL reads them', () => {
    const text = [
      '#max_wal_size = 1GB',
      'max_wal_size = 2GB  # first',
      'min_wal_size = 80MB',
      "MAX_WAL_SIZE = '4 GB'",
      'max_wal_size_x = 9GB',
      "archive_command = 'cp %p ''/a b/%f'''",
    ].join('\n')
    assert.equal(lastSetting(text, 'max_wal_size'), '4 GB')
    assert.equal(lastSetting(text, 'archive_command'), "cp %p '/a b/%f'")
    assert.equal(lastSetting('max_wal_size 512', 'max_wal_size'), '512')
    assert.equal(lastSetting('# nothing', 'max_wal_size'), null)
  })

  test('memory units: MB by default for max_wal_size, the units PostgreSQL accepts, null otherwise', () => {
    assert.equal(parseMemorySetting('2048', 'MB'), 2048 * 1024 ** 2)
    assert.equal(parseMemorySetting('2GB', 'MB'), 2 * 1024 ** 3)
    assert.equal(parseMemorySetting('4 GB', 'MB'), 4 * 1024 ** 3)
    assert.equal(parseMemorySetting('1TB', 'MB'), 1024 ** 4)
    assert.equal(parseMemorySetting('65536kB', 'MB'), 64 * 1024 ** 2)
    assert.equal(parseMemorySetting('2gb', 'MB'), null, 'units are case-sensitive in PostgreSQL')
    assert.equal(parseMemorySetting('-1', 'MB'), null)
  })

  test('postgresql.auto.conf overrides postgresql.conf; a missing file is nothing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-conf-'))
    try {
      assert.equal(await readDataDirSetting(dir, 'max_wal_size'), null)
      fs.writeFileSync(path.join(dir, 'postgresql.conf'), 'max_wal_size = 2GB\n')
      assert.equal(await readDataDirSetting(dir, 'max_wal_size'), '2GB')
      fs.writeFileSync(path.join(dir, 'postgresql.auto.conf'), "max_wal_size = '8GB'\n")
      assert.equal(await readDataDirSetting(dir, 'max_wal_size'), '8GB')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
