// Waiting for a server to reach a state: one polling loop for the demo's nodes and the test kit's.

/**
 * Polls `condition` every `intervalMs` until it is true (resolves to null) or `timeoutMs` has
 * passed (resolves to the last error the condition threw, or undefined if it only said false).
 */
export async function pollUntil(condition: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs: number): Promise<unknown> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      if (await condition()) return null
      lastError = undefined
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) return lastError
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
