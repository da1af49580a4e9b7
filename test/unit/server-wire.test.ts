// The wire parser of a server source: DataRow messages far larger than a socket read, put
// together across reads in one reused buffer, come out whole and right, in binary format.

import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, test } from 'node:test'
import { assemblyFieldsKnown, newRowParser } from '../../src/source/server-wire.js'

function message(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head.write(code, 0, 'latin1')
  head.writeUInt32BE(body.length + 4, 1)
  return Buffer.concat([head, body])
}

/** RowDescription of one bytea column in binary format. */
function rowDescription(): Buffer {
  const name = Buffer.from('chunk\0')
  const field = Buffer.alloc(18)
  field.writeUInt32BE(0, 0) // table oid
  field.writeInt16BE(0, 4) // column
  field.writeUInt32BE(17, 6) // bytea
  field.writeInt16BE(-1, 10) // size
  field.writeInt32BE(-1, 12) // modifier
  field.writeInt16BE(1, 16) // binary
  const count = Buffer.alloc(2)
  count.writeInt16BE(1)
  return message('T', Buffer.concat([count, name, field]))
}

function dataRow(value: Buffer): Buffer {
  const head = Buffer.alloc(6)
  head.writeInt16BE(1, 0)
  head.writeInt32BE(value.length, 2)
  return message('D', Buffer.concat([head, value]))
}

describe('server wire parser', () => {
  test('the parser state it reuses is as expected', () => {
    assert.ok(newRowParser() !== null, 'pg-protocol parser not found')
    assert.equal(assemblyFieldsKnown, true, "pg-protocol's parser changed: messages are put together its own way")
  })

  test('DataRows of a megabyte, split across reads of every size, come out whole', () => {
    // Field sizes on both sides of the pooled ones' smallest (4 kB) and of powers of two.
    const sizes = [1024 * 1024, 5, 700 * 1024, 1024 * 1024 + 3, 4095, 4096, 8192, 12_345, 65_536]
    const values = sizes.map((size) => randomBytes(size))
    const stream = Buffer.concat([rowDescription(), ...values.map(dataRow), message('Z', Buffer.from('I'))])
    for (const readSize of [1, 7, 4096, 65536, 100_000, stream.length]) {
      const parser = newRowParser()!
      const got: Buffer[] = []
      let ready = false
      for (let at = 0; at < stream.length; at += readSize) {
        // A fresh buffer per read, as a socket gives.
        parser.parse(Buffer.from(stream.subarray(at, at + readSize)), (msg) => {
          const m = msg as unknown as { name: string; fields?: unknown[] }
          if (m.name === 'dataRow') got.push(m.fields![0] as Buffer)
          if (m.name === 'readyForQuery') ready = true
        })
      }
      assert.equal(ready, true, `reads of ${readSize}`)
      assert.equal(got.length, values.length, `reads of ${readSize}`)
      for (let i = 0; i < values.length; i++) assert.ok(got[i]!.equals(values[i]!), `row ${i}, reads of ${readSize}`)
    }
  })
})
