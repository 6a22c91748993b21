/** Progress lines on stderr (stdout carries the table and the JSON line only). */
const started = performance.now();

/** Prints `[  12.3s] message` to stderr. */
export function progress(message: string): void {
  const s = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${s}s] ${message}\n`);
}
