// What the comparison reads: the files present on both sides cut into ranges of whole blocks (the
// part both have), grouped into batches of about one read's worth, small files many to a batch.
// Pure and lazy: a batch is cut only when a worker asks for the next one.

export interface CompareFile {
  /** Relative to the data directory, '/'-separated, as in the listings and the plan. */
  readonly path: string
  readonly sourceSize: number
  readonly targetSize: number
}

export interface CompareRange {
  readonly file: CompareFile
  readonly firstBlock: number
  readonly count: number
  /** Bytes compared: count blocks, the last one shorter when the common part ends inside it. */
  readonly bytes: number
}

/** Bytes of `file` compared: what both sides hold, in whole blocks unless `partialBlocks`. */
export function comparedLength(file: CompareFile, blockSize: number, partialBlocks: boolean): number {
  const common = Math.max(0, Math.min(file.sourceSize, file.targetSize))
  return partialBlocks ? common : common - (common % blockSize)
}

/**
 * Batches of ranges, each at most `batchBytes` (a multiple of blockSize) and `maxRanges` ranges;
 * a file longer than a batch is cut into ranges of `batchBytes`, each a batch of its own.
 */
export function* compareBatches(
  files: readonly CompareFile[],
  blockSize: number,
  opts: {
    readonly batchBytes: number
    readonly maxRanges: number
    readonly partialBlocks: boolean
  },
): Generator<CompareRange[]> {
  if (opts.batchBytes < blockSize || opts.batchBytes % blockSize !== 0)
    throw new RangeError(`batch size ${opts.batchBytes} is not a multiple of ${blockSize}`)
  let batch: CompareRange[] = []
  let bytes = 0
  for (const file of files) {
    const length = comparedLength(file, blockSize, opts.partialBlocks)
    for (let offset = 0; offset < length; offset += opts.batchBytes) {
      const len = Math.min(opts.batchBytes, length - offset)
      if (batch.length > 0 && (bytes + len > opts.batchBytes || batch.length >= opts.maxRanges)) {
        yield batch
        batch = []
        bytes = 0
      }
      batch.push({ file, firstBlock: offset / blockSize, count: Math.ceil(len / blockSize), bytes: len })
      bytes += len
    }
  }
  if (batch.length > 0) yield batch
}

/** Total bytes the batches of `files` compare. */
export function totalComparedBytes(files: readonly CompareFile[], blockSize: number, partialBlocks: boolean): number {
  let total = 0
  for (const file of files) total += comparedLength(file, blockSize, partialBlocks)
  return total
}
