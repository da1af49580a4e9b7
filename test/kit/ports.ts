// Free TCP ports on 127.0.0.1, unique across the test processes running in parallel. A port is
// taken by creating <tmpdir>/walrewind-ports/<port> with O_EXCL (holding the owner's pid), then
// checked with a bind; a lock whose owner process is gone is stale and taken over.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

// Below Linux's ephemeral range (32768+), so client sockets do not grab our ports.
const FIRST_PORT = 15000
const LAST_PORT = 32000

const lockDir = (): string => path.join(os.tmpdir(), 'walrewind-ports')

/** Reserves a free port; release it with releasePort when the server that used it is gone. */
export async function reservePort(): Promise<number> {
  const dir = lockDir()
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(dir, { recursive: true })
    // Shared by root and non-root runs on the same machine, like /tmp itself.
    try {
      fs.chmodSync(dir, 0o1777)
    } catch {
      /* made by someone else meanwhile */
    }
  }
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = FIRST_PORT + Math.floor(Math.random() * (LAST_PORT - FIRST_PORT))
    if (!takeLock(port)) continue
    if (await canBind(port)) return port
    releasePort(port)
  }
  throw new Error(`test kit: no free port found between ${FIRST_PORT} and ${LAST_PORT}`)
}

/** Removes the lock of a port this process reserved. */
export function releasePort(port: number): void {
  try {
    const file = path.join(lockDir(), String(port))
    if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file)
  } catch {
    // already gone
  }
}

function takeLock(port: number): boolean {
  const file = path.join(lockDir(), String(port))
  try {
    fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  // The owner may have died without releasing it (killed test process); then the lock is stale.
  // Taking it over is racy only against another process doing the same, which the bind test and
  // the O_EXCL retry below settle.
  let owner = NaN
  try {
    owner = Number(fs.readFileSync(file, 'utf8').trim())
  } catch {
    return false
  }
  if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) return false
  try {
    fs.unlinkSync(file)
    fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
    return true
  } catch {
    return false
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)))
  })
}
