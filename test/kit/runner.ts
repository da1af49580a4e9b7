// Runs programs as the PG OS user and collects their output: the module `walrewind demo` uses
// too (src/demo/runner.ts). A non-zero exit is a result, not an error (tests assert on it); a
// timeout is an error, because a hung child means a broken test.

export { Runner, tail, type RunOptions, type RunResult } from '../../src/demo/runner.js'
