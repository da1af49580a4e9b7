// Base copies for new standbys, without pg_basebackup: the low-level backup API around a file
// copy of a running node, or a plain copy of a stopped one; `walrewind demo`'s module
// (src/demo/base-copy.ts).

export { copyRunning, copyStopped, type CopySource, type CopyTarget } from '../../src/demo/base-copy.js'
