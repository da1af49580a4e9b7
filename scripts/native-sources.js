// What a build of the native WAL scan is made of, shared by the install step (build-native.js,
// shipped in the package) and the prebuild script (prebuild.js, a checkout's): binding.gyp and
// every file of native/, in name order, hashed.
import crypto from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'

export function sourcesHash(root) {
  const hash = crypto.createHash('sha256')
  const files = [
    'binding.gyp',
    ...fs
      .readdirSync(path.join(root, 'native'))
      .sort()
      .map((name) => `native/${name}`),
  ]
  for (const file of files) {
    hash.update(`${file}\0`)
    hash.update(fs.readFileSync(path.join(root, file)))
    hash.update('\0')
  }
  return hash.digest('hex')
}
