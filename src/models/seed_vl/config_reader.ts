/**
 * A small reader for JSON config sections. Each accessor validates one key and
 * throws a `ConfigError` that names the key by its full dotted path and shows
 * the bad value, so `config.json` typos are found at load, not deep in a forward.
 * `finish()` rejects keys nobody asked for (misspellings would otherwise be
 * silently ignored and the default used).
 */

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Json = Record<string, unknown>;

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export interface NumberRule {
  min?: number;
  max?: number;
  /** true: the bound itself is not allowed (e.g. eps > 0). */
  exclusiveMin?: boolean;
}

export class Section {
  private readonly used = new Set<string>();

  constructor(private readonly obj: Json, readonly path: string) {}

  static root(value: unknown, what = 'config'): Section {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new ConfigError(`${what} must be a JSON object, got ${show(value)}`);
    }
    return new Section(value as Json, '');
  }

  private keyPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  fail(key: string, expected: string, value: unknown = this.obj[key]): never {
    throw new ConfigError(`config: ${this.keyPath(key)} ${expected}, got ${show(value)}`);
  }

  private take(key: string, fallback: unknown): unknown {
    this.used.add(key);
    const v = this.obj[key];
    if (v === undefined) {
      if (fallback === undefined) throw new ConfigError(`config: ${this.keyPath(key)} is required but missing`);
      return fallback;
    }
    return v;
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  private checkRange(key: string, v: number, rule: NumberRule): void {
    if (rule.min !== undefined && (rule.exclusiveMin ? v <= rule.min : v < rule.min)) {
      this.fail(key, `must be ${rule.exclusiveMin ? '>' : '>='} ${rule.min}`, v);
    }
    if (rule.max !== undefined && v > rule.max) this.fail(key, `must be <= ${rule.max}`, v);
  }

  int(key: string, rule: NumberRule & { default?: number } = {}): number {
    const v = this.take(key, rule.default);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(key, 'must be an integer', v);
    this.checkRange(key, v as number, rule);
    return v as number;
  }

  num(key: string, rule: NumberRule & { default?: number } = {}): number {
    const v = this.take(key, rule.default);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(key, 'must be a finite number', v);
    this.checkRange(key, v as number, rule);
    return v as number;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.take(key, fallback);
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false', v);
    return v as boolean;
  }

  oneOf<T extends string>(key: string, values: readonly T[], fallback?: T): T {
    const v = this.take(key, fallback);
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(key, `must be one of ${values.map((x) => `"${x}"`).join(', ')}`, v);
    return v as T;
  }

  /** An integer that may be null/absent (meaning "derive it"). */
  optionalInt(key: string, rule: NumberRule = {}): number | null {
    this.used.add(key);
    const v = this.obj[key];
    if (v === undefined || v === null) return null;
    return this.int(key, rule);
  }

  /** A nested object section, or null when the key is absent/null and `optional`. */
  section(key: string, optional = false): Section | null {
    this.used.add(key);
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (optional) return null;
      throw new ConfigError(`config: ${this.keyPath(key)} is required but missing`);
    }
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'must be an object', v);
    return new Section(v as Json, this.keyPath(key));
  }

  /** Throws if the section holds keys that were never read (typos, stale keys). */
  finish(): void {
    for (const k of Object.keys(this.obj)) {
      if (!this.used.has(k)) throw new ConfigError(`config: unknown key ${this.keyPath(k)} (value ${show(this.obj[k])})`);
    }
  }
}
