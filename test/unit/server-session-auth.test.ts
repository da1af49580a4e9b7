// What the server asks for during authentication, against a fake server on 127.0.0.1 that answers
// the startup packet with one authentication request: methods walrewind cannot do are refused by
// name (not an exception in the protocol parser), and channel_binding=require refuses, as libpq,
// every request but SCRAM-SHA-256-PLUS over TLS, before any password is sent.

import assert from 'node:assert/strict'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { isRewindError } from '../../src/errors.js'
import { parseConninfo } from '../../src/source/conninfo-parse.js'
import { resolveConnection } from '../../src/source/conninfo-resolve.js'
import { connectFirst } from '../../src/source/server-session.js'

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'walrewind-auth-'))
after(() => fs.rmSync(home, { recursive: true, force: true }))

/** An 'R' message: int32 code, then `body`. */
function authRequest(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.write('R', 0)
  head.writeInt32BE(8 + body.length, 1)
  head.writeInt32BE(code, 5)
  return Buffer.concat([head, body])
}

/** A server that answers every startup packet with `reply`, and records what the client sent after it. */
async function fakeServer(reply: Buffer): Promise<{ port: number; received: () => Buffer; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>()
  let received = Buffer.alloc(0)
  const server = net.createServer((socket) => {
    sockets.add(socket)
    let startup = true
    let pending = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      if (!startup) {
        received = Buffer.concat([received, chunk])
        return
      }
      pending = Buffer.concat([pending, chunk])
      if (pending.length < 4 || pending.length < pending.readInt32BE(0)) return
      startup = false
      socket.write(reply)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

async function connectError(reply: Buffer, extra: string): Promise<{ message: string; hint: string | undefined; received: Buffer }> {
  const server = await fakeServer(reply)
  try {
    const resolved = resolveConnection(
      parseConninfo(`host=127.0.0.1 port=${server.port} user=u dbname=d password=secret sslmode=disable ${extra}`),
      {},
      'u',
      { homeDir: home, defaultConnectTimeoutMs: 5000 },
    )
    let caught: unknown = null
    try {
      const conn = await connectFirst(resolved)
      conn.destroy()
    } catch (err) {
      caught = err
    }
    assert.ok(isRewindError(caught), `expected a RewindError, got ${String(caught)}`)
    assert.equal(caught.code, 'SOURCE_CONNECTION')
    // let the socket deliver anything the client might still have sent
    await new Promise((resolve) => setTimeout(resolve, 50))
    return { message: caught.message, hint: caught.info.hint, received: server.received() }
  } finally {
    await server.close()
  }
}

const at = (port: string) => `connection to server at "127.0.0.1", port ${port} failed: `

describe('authentication methods walrewind cannot do', () => {
  it('GSSAPI (a pg_hba.conf "gss" line): named, with what to do instead', async () => {
    const { message, hint } = await connectError(authRequest(7), '')
    assert.match(hint ?? '', /pg_hba\.conf, authenticate the rewind role with scram-sha-256/)
    assert.match(
      message,
      /^connection to server at "127\.0\.0\.1", port \d+ failed: GSSAPI authentication not supported: walrewind has no GSSAPI \(Kerberos\) support$/,
    )
    // krbsrvname does not change that: it only names the Kerberos service
    assert.match((await connectError(authRequest(7), 'krbsrvname=postgres')).message, /GSSAPI authentication not supported/)
  })
  it('SSPI, Kerberos 5 and an unknown method: named', async () => {
    assert.match((await connectError(authRequest(9), '')).message, /failed: SSPI authentication not supported/)
    assert.match((await connectError(authRequest(2), '')).message, /failed: Kerberos 5 authentication not supported$/)
    assert.match((await connectError(authRequest(42), '')).message, /failed: authentication method 42 not supported$/)
  })
})

describe('channel_binding=require', () => {
  it('refuses a server that lets the client in without channel binding (trust)', async () => {
    const { message } = await connectError(authRequest(0), 'channel_binding=require')
    assert.match(message, new RegExp(`^${at('\\d+')}channel binding required, but server authenticated client without channel binding$`))
  })
  it('refuses md5 and cleartext password requests without sending the password', async () => {
    const salt = Buffer.from([1, 2, 3, 4])
    const md5 = await connectError(authRequest(5, salt), 'channel_binding=require')
    assert.match(md5.message, /failed: channel binding required but not supported by server's authentication request$/)
    assert.equal(md5.received.length, 0, 'the client answered the md5 request')
    const clear = await connectError(authRequest(3), 'channel_binding=require')
    assert.match(clear.message, /channel binding required but not supported/)
    assert.doesNotMatch(clear.received.toString('latin1'), /secret/)
  })
  it('refuses SCRAM without TLS', async () => {
    const { message, received } = await connectError(authRequest(10, Buffer.from('SCRAM-SHA-256\0\0')), 'channel_binding=require')
    assert.match(message, /failed: channel binding is required, but SSL not in use$/)
    assert.equal(received.length, 0)
  })
  it('lets prefer (the default) go on with what the server offers', async () => {
    // the fake server never finishes; node-postgres answers the md5 request with the password
    const salt = Buffer.from([1, 2, 3, 4])
    const server = await fakeServer(authRequest(5, salt))
    try {
      const resolved = resolveConnection(
        parseConninfo(`host=127.0.0.1 port=${server.port} user=u dbname=d password=secret sslmode=disable connect_timeout=2`),
        {},
        'u',
        { homeDir: home },
      )
      await assert.rejects(connectFirst(resolved), /timeout expired/)
      assert.equal(server.received()[0], 0x70 /* 'p': PasswordMessage */)
    } finally {
      await server.close()
    }
  })
})
