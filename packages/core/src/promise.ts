/** A thenable (Promises/A+): what `await` and `Promise.resolve` would follow, a promise or not. */
export function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function'
  );
}
