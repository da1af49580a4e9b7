// LSNs as PostgreSQL prints them ("16/B374D848") and as bigints for comparing. The kit keeps its
// own copy rather than importing src/, so the kit does not break when src/ does.

/** "X/X" to a bigint; throws on anything else. */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text.trim())
  if (!match) throw new Error(`invalid LSN ${JSON.stringify(text)}`)
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}
