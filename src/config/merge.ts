/** Plain-data helpers shared by the options layer. */

/** True for `{...}` objects (not arrays, not null, not class instances such as Date). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Sets an own property, even one named `__proto__` (which plain assignment would turn into a
 * prototype change): such a key then reaches validation and is rejected as unknown.
 */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Deep merge of plain data. Plain objects merge key by key; anything else in `override`
 * (scalars, arrays, null) replaces what `base` had; `undefined` in `override` keeps `base`.
 * Neither argument is mutated; the result shares no objects or arrays with them.
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (override === undefined) return clone(base);
  if (!isPlainObject(base) || !isPlainObject(override)) return clone(override);
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(base)) setOwn(out, key, clone(value));
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue;
    setOwn(out, key, deepMerge(Object.hasOwn(out, key) ? out[key] : undefined, value));
  }
  return out;
}

function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) setOwn(out, key, clone(child));
    return out;
  }
  return value;
}

/** Freezes `value` and everything reachable from it; returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
