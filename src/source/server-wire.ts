// node-postgres with binary result rows and flow control. node-postgres 8 decodes every DataRow
// field as UTF-8 text, which mangles binary bytea; this connection keeps binary-format fields as
// Buffers (text-format fields stay strings, so ordinary queries work as before) and records when
// the server last sent anything, for the source's timeout. StreamingQuery delivers rows one at a
// time to an async handler and pauses the socket while the handler is behind: memory stays at a
// few chunks per connection however large the result.

import { createRequire } from 'node:module'
import pg from 'pg'
import type { ClientConfig, Connection, FieldDef, Submittable } from 'pg'

/** A field of a result row: Buffer in binary format, string in text format, null for NULL. */
export type RawField = Buffer | string | null

interface ProtocolMessage {
  name: string
  length: number
}
interface RowDescriptionMessage extends ProtocolMessage {
  fields: FieldDef[]
}
interface ParserLike {
  parse(buffer: Buffer, callback: (msg: ProtocolMessage) => void): void
}
type ParserClass = new () => ParserLike & { handlePacket(offset: number, code: number, length: number, bytes: Buffer): ProtocolMessage }

// pg-protocol is node-postgres's own dependency; resolve it through pg so we get the same copy.
// Should its layout ever change, binary rows are off and results come as text (hex bytea).
function loadParser(): ParserClass | null {
  try {
    const requireFromPg = createRequire(createRequire(import.meta.url).resolve('pg'))
    const { Parser } = requireFromPg('pg-protocol/dist/parser.js') as { Parser?: ParserClass }
    return typeof Parser === 'function' && typeof Parser.prototype.handlePacket === 'function' ? Parser : null
  } catch {
    return null
  }
}
const Parser = loadParser()

/** Whether binary-format results arrive intact (else ask for text and decode hex bytea). */
export const binaryRowsSupported = Parser !== null

const ROW_DESCRIPTION = 0x54 // 'T'
const DATA_ROW = 0x44 // 'D'

/**
 * Buffers for binary fields, given back once a query that lends its rows has handled them: a
 * fresh megabyte a row cost about 2 ms in page faults on this machine, more than the copy into
 * it, and a fresh buffer a changed block (20,000 rows of 8 to 16 kB at scale 200) cost about a
 * tenth of a remote copy's main thread in allocation and the collections its external memory set
 * off. Fields under Node's own pool size come from that pool. By capacity, a power of two; of
 * each capacity as many kept as fill a megabyte, and at least a few.
 */
const FIELD_POOL_MIN = 4 * 1024
const FIELD_POOL_KEEP_BYTES = 1024 * 1024
const FIELD_POOL_KEEP_MIN = 8
const fieldPool = new Map<number, Buffer[]>()

function copyOut(bytes: Buffer, at: number, length: number): Buffer {
  if (length < FIELD_POOL_MIN) return Buffer.from(bytes.subarray(at, at + length))
  const capacity = 2 ** Math.ceil(Math.log2(length))
  const field = (fieldPool.get(capacity)?.pop() ?? Buffer.allocUnsafeSlow(capacity)).subarray(0, length)
  bytes.copy(field, 0, at, at + length)
  return field
}

/** Gives a field made by copyOut back; the caller no longer holds it. */
function giveBack(field: RawField): void {
  if (field === null || typeof field === 'string' || field.length < FIELD_POOL_MIN || field.byteOffset !== 0) return
  const capacity = field.buffer.byteLength
  if (capacity !== 2 ** Math.ceil(Math.log2(field.length))) return
  let kept = fieldPool.get(capacity)
  if (kept === undefined) fieldPool.set(capacity, (kept = []))
  if (kept.length < Math.max(FIELD_POOL_KEEP_MIN, FIELD_POOL_KEEP_BYTES / capacity))
    kept.push(Buffer.from(field.buffer as ArrayBuffer, 0, capacity))
}

/** Whether pg-protocol's Parser keeps the state mergeBuffer works on as this file expects. */
export const assemblyFieldsKnown = (() => {
  if (Parser === null) return false
  const probe = new Parser() as unknown as Record<string, unknown>
  return (
    typeof probe['mergeBuffer'] === 'function' &&
    Buffer.isBuffer(probe['buffer']) &&
    probe['bufferLength'] === 0 &&
    probe['bufferOffset'] === 0
  )
})()

/** pg-protocol's Parser, except that DataRow fields in binary format come out as Buffers. */
const BinaryRowParser =
  Parser === null
    ? null
    : class extends Parser {
        private binary: boolean[] = []
        private anyBinary = false
        /** Where messages that span socket reads are put together, kept from one to the next. */
        private assembly: Buffer | null = null

        /**
         * pg-protocol's own puts a message that spans reads together in a buffer grown by doubling
         * from the first read's size, dropped once the message is handled: for every 1 MB chunk
         * of a file about 2 MB of fresh memory, whose page faults cost more than the copying
         * (this machine: about 2 ms a megabyte). Here one buffer, grown to the largest message,
         * serves them all (each DataRow field is copied out of it: see dataRow).
         */
        mergeBuffer(incoming: Buffer): void {
          const self = this as unknown as { buffer: Buffer; bufferLength: number; bufferOffset: number }
          if (!assemblyFieldsKnown) {
            ;(Parser!.prototype as unknown as { mergeBuffer(b: Buffer): void }).mergeBuffer.call(this, incoming)
            return
          }
          if (self.bufferLength === 0) {
            self.buffer = incoming
            self.bufferOffset = 0
            self.bufferLength = incoming.byteLength
            return
          }
          const length = self.bufferLength + incoming.byteLength
          if (self.buffer !== this.assembly || self.bufferOffset + length > self.buffer.byteLength) {
            // The part of a message held so far goes to the start of the assembly buffer.
            let assembly = this.assembly
            if (assembly === null || assembly.byteLength < length) {
              assembly = Buffer.allocUnsafeSlow(2 ** Math.ceil(Math.log2(Math.max(length, 65536))))
            }
            if (self.buffer === assembly) assembly.copyWithin(0, self.bufferOffset, self.bufferOffset + self.bufferLength)
            else self.buffer.copy(assembly, 0, self.bufferOffset, self.bufferOffset + self.bufferLength)
            this.assembly = assembly
            self.buffer = assembly
            self.bufferOffset = 0
          }
          incoming.copy(self.buffer, self.bufferOffset + self.bufferLength)
          self.bufferLength = length
        }

        override handlePacket(offset: number, code: number, length: number, bytes: Buffer): ProtocolMessage {
          if (code === DATA_ROW && this.anyBinary) return this.dataRow(offset, length, bytes)
          const msg = super.handlePacket(offset, code, length, bytes)
          if (code === ROW_DESCRIPTION) {
            this.binary = (msg as RowDescriptionMessage).fields.map((f) => f.format === 'binary')
            this.anyBinary = this.binary.includes(true)
          }
          return msg
        }

        // DataRow: int16 field count, then per field int32 length (-1 = NULL) and the bytes.
        private dataRow(offset: number, length: number, bytes: Buffer): ProtocolMessage {
          const count = bytes.readInt16BE(offset)
          let p = offset + 2
          const fields: RawField[] = new Array(count)
          for (let i = 0; i < count; i++) {
            const len = bytes.readInt32BE(p)
            p += 4
            if (len < 0) {
              fields[i] = null
              continue
            }
            // A copy: the parser reuses its buffer for the next socket read.
            fields[i] = this.binary[i] ? copyOut(bytes, p, len) : bytes.toString('utf8', p, p + len)
            p += len
          }
          return { name: 'dataRow', length, fieldCount: count, fields } as ProtocolMessage
        }
      }

/** A new parser of the wire protocol, DataRow fields in binary format as Buffers (null without pg-protocol's). */
export function newRowParser(): ParserLike | null {
  return BinaryRowParser === null ? null : new BinaryRowParser()
}

interface PgConnectionInternals extends Connection {
  _emitMessage: boolean
  parsedStatements: Record<string, string>
  stream: Connection['stream'] & { pause(): void; resume(): void; destroy(err?: Error): void; cork?(): void; uncork?(): void }
  emit(event: string, ...args: unknown[]): boolean
}

const PgConnection = (pg as unknown as { Connection: new (config: object) => PgConnectionInternals }).Connection

/** A node-postgres Connection with the binary-row parser and a last-heard-from clock. */
export class WireConnection extends PgConnection {
  /** Date.now() when the server last sent bytes (or when a wait on it started). */
  lastActivity = Date.now()

  attachListeners(stream: NodeJS.ReadableStream): void {
    if (BinaryRowParser === null) {
      stream.on('data', () => {
        this.lastActivity = Date.now()
      })
      const plain = PgConnection.prototype as unknown as { attachListeners(s: NodeJS.ReadableStream): void }
      plain.attachListeners.call(this, stream)
      return
    }
    const parser = new BinaryRowParser()
    stream.on('data', (buffer: Buffer) => {
      this.lastActivity = Date.now()
      parser.parse(buffer, (msg) => {
        const eventName = msg.name === 'error' ? 'errorMessage' : msg.name
        if (this._emitMessage) this.emit('message', msg)
        this.emit(eventName, msg)
      })
    })
  }
}

/** A node-postgres Client on a WireConnection. */
export function createClient(config: ClientConfig): { client: pg.Client; wire: WireConnection } {
  const wire = new WireConnection({
    ssl: config.ssl ?? false,
    keepAlive: config.keepAlive ?? false,
    keepAliveInitialDelayMillis: config.keepAliveInitialDelayMillis ?? 0,
    encoding: 'utf8',
  })
  const client = new pg.Client({ ...config, connection: wire } as ClientConfig)
  return { client, wire }
}

export interface StreamingQueryOptions {
  /** Prepared statement name; parsed once per connection. */
  readonly name?: string
  readonly text: string
  /** Parameters: strings in text format, Buffers in binary format (for a bytea, its bytes). */
  readonly values: ReadonlyArray<string | Buffer>
  /** Ask for all result columns in binary format. */
  readonly binary: boolean
  /** Checks the result's columns before any row; throw to refuse the result. */
  readonly onFields?: (fields: readonly FieldDef[]) => void
  /** Receives each row in order, one at a time; throw (or reject) to abort. */
  readonly onRow: (fields: RawField[]) => void | Promise<void>
  /** Pause reading from the socket once this many bytes of rows wait for onRow. */
  readonly highWaterBytes?: number
  /**
   * onRow keeps nothing of a row once its promise settles: the row's big binary fields are
   * reused for later rows.
   */
  readonly lendsRows?: boolean
}

/**
 * One extended-protocol query whose rows go to `onRow` as they arrive. `done` settles once the
 * server finished and every row was handled, or on the first error.
 */
export class StreamingQuery implements Submittable {
  readonly name: string | undefined
  readonly text: string
  readonly done: Promise<void>
  private resolve!: () => void
  private reject!: (err: unknown) => void
  private settled = false
  private failed = false
  private serverDone = false
  private pending: RawField[][] = []
  private pendingBytes = 0
  private draining = false
  private paused = false
  private wire: PgConnectionInternals | null = null
  private readonly highWater: number

  constructor(private readonly opts: StreamingQueryOptions) {
    this.name = opts.name
    this.text = opts.text
    this.highWater = opts.highWaterBytes ?? 4 * 1024 * 1024
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve
      this.reject = reject
    })
  }

  /**
   * Whether we are waiting on the server: not while rows are being handled or the socket is
   * paused for them (then a slow disk, not the server, is what we wait for).
   */
  get awaitingServer(): boolean {
    return !this.settled && !this.serverDone && !this.paused && !this.draining
  }

  submit(connection: Connection): void {
    const con = connection as PgConnectionInternals
    this.wire = con
    con.stream.cork?.()
    try {
      const name = this.opts.name ?? ''
      if (name === '' || con.parsedStatements[name] === undefined) con.parse({ name, text: this.opts.text, types: [] }, true)
      con.bind({ statement: name, values: [...this.opts.values], binary: this.opts.binary as unknown as string }, true)
      con.describe({ type: 'P', name: '' }, true)
      con.execute({ portal: '' }, true)
      con.sync()
    } finally {
      con.stream.uncork?.()
    }
  }

  handleRowDescription(msg: RowDescriptionMessage): void {
    if (this.failed) return
    try {
      this.opts.onFields?.(msg.fields)
    } catch (err) {
      this.fail(err)
    }
  }

  handleDataRow(msg: { fields: RawField[] }): void {
    if (this.failed) return
    let size = 0
    for (const f of msg.fields) if (f !== null) size += f.length
    this.pending.push(msg.fields)
    this.pendingBytes += size
    if (this.pendingBytes >= this.highWater && !this.paused && this.wire !== null) {
      this.paused = true
      this.wire.stream.pause()
    }
    if (!this.draining) void this.drain()
  }

  private async drain(): Promise<void> {
    this.draining = true
    try {
      while (this.pending.length > 0 && !this.failed) {
        const row = this.pending.shift()!
        let size = 0
        for (const f of row) if (f !== null) size += f.length
        await this.opts.onRow(row)
        if (this.opts.lendsRows === true) for (const field of row) giveBack(field)
        this.touch()
        this.pendingBytes -= size
        if (this.paused && this.pendingBytes < this.highWater / 2) this.resumeSocket()
      }
    } catch (err) {
      this.fail(err)
    } finally {
      this.draining = false
    }
    this.maybeFinish()
  }

  // The server's silence counts only while we wait on it: its clock restarts whenever we turn
  // back to it after handling rows.
  private touch(): void {
    const wire = this.wire as unknown as { lastActivity?: number } | null
    if (wire !== null) wire.lastActivity = Date.now()
  }

  private resumeSocket(): void {
    if (!this.paused || this.wire === null) return
    this.paused = false
    this.touch()
    this.wire.stream.resume()
  }

  private maybeFinish(): void {
    if (this.serverDone && !this.draining && this.pending.length === 0 && !this.settled) {
      this.settled = true
      this.resolve()
    }
  }

  private fail(err: unknown): void {
    this.failed = true
    this.pending = []
    this.pendingBytes = 0
    // Let the rest of the result flow (and be dropped) so the connection reaches ReadyForQuery.
    this.resumeSocket()
    if (!this.settled) {
      this.settled = true
      this.reject(err)
    }
  }

  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(connection: Connection): void {
    ;(connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail('COPY is not expected here')
  }

  handleCopyData(): void {}

  handleError(err: unknown): void {
    this.fail(err)
  }

  handleReadyForQuery(): void {
    this.serverDone = true
    this.maybeFinish()
  }
}
