import { ValidationError } from '../errors';

/**
 * Reads fields out of one parsed YAML/JSON mapping, collecting the path for error messages and
 * refusing fields the schema does not know (a typo must not be silently ignored).
 */
export class DocumentReader {
  constructor(
    private readonly where: string,
    private readonly obj: Record<string, unknown>,
    private readonly path: string = '',
  ) {}

  static of(where: string, value: unknown, path = ''): DocumentReader {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ValidationError(`${where}${path ? `: ${path}` : ''}`, 'must be a mapping of fields');
    }
    return new DocumentReader(where, value as Record<string, unknown>, path);
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  isString(key: string): boolean {
    return typeof this.obj[key] === 'string';
  }

  /** Throws on any field not in `known`. */
  onlyKnown(known: readonly string[]): void {
    for (const key of Object.keys(this.obj)) {
      if (!known.includes(key)) {
        throw this.error(key, `unknown field (expected one of: ${known.join(', ')})`);
      }
    }
  }

  child(key: string): DocumentReader | undefined {
    if (!this.has(key)) return undefined;
    return DocumentReader.of(this.where, this.obj[key], this.fieldPath(key));
  }

  string(key: string, required = false): string {
    const v = this.obj[key];
    if (v === undefined || v === null) {
      if (required) throw this.error(key, 'is required');
      return '';
    }
    if (typeof v !== 'string' && typeof v !== 'number') throw this.error(key, `must be a string, not ${describe(v)}`);
    return String(v);
  }

  integer(key: string, min: number, max: number): number {
    const v = this.obj[key];
    if (v === undefined || v === null) return 0;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw this.error(key, `must be an integer, not ${describe(v)}`);
    if (v < min || v > max) throw this.error(key, `${v} is out of range (${min} to ${max})`);
    return v;
  }

  boolean(key: string): boolean | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw this.error(key, `must be true or false, not ${describe(v)}`);
    return v;
  }

  stringList(key: string): string[] {
    const v = this.obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.error(key, 'must be a list of strings');
    return v as string[];
  }

  /** A list of distinct integers in [min, max]. */
  integerList(key: string, min: number, max: number): number[] {
    const v = this.obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) throw this.error(key, `must be a list of integers (${min} to ${max}), not ${describe(v)}`);
    const seen = new Set<number>();
    for (const x of v as unknown[]) {
      if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max) throw this.error(key, `${describe(x)} is not an integer from ${min} to ${max}`);
      if (seen.has(x)) throw this.error(key, `lists ${x} twice`);
      seen.add(x);
    }
    return [...seen];
  }

  /**
   * A flat mapping of names to scalar values, as strings: `{ samplePeriodMs: 500 }` reads as
   * `{ samplePeriodMs: "500" }`. Nested values are refused.
   */
  stringMap(key: string, maxEntries: number, maxLength: number): Record<string, string> {
    const v = this.obj[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw this.error(key, `must be a mapping of names to values, not ${describe(v)}`);
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.length > maxEntries) throw this.error(key, `has ${entries.length} entries (at most ${maxEntries})`);
    const out: Record<string, string> = {};
    for (const [name, value] of entries) {
      if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
        throw this.error(`${key}.${name}`, `must be a string, number or boolean, not ${describe(value)}`);
      }
      const text = String(value);
      if (name.length === 0 || name.length > maxLength || text.length > maxLength) {
        throw this.error(`${key}.${name}`, `names and values must be 1 to ${maxLength} characters`);
      }
      out[name] = text;
    }
    return out;
  }

  /** A word from a fixed vocabulary, mapped to its proto enum value. */
  word<T extends string>(key: string, table: Readonly<Record<string, T>>, fallback: T): T {
    const v = this.obj[key];
    if (v === undefined || v === null) return fallback;
    const word = String(v).toLowerCase();
    // Own keys only: `constructor` or `__proto__` must not find Object.prototype's members.
    const mapped = Object.hasOwn(table, word) ? table[word] : undefined;
    if (mapped === undefined || (typeof v !== 'string' && typeof v !== 'number')) {
      throw this.error(key, `${JSON.stringify(v)} is not one of ${Object.keys(table).join(', ')}`);
    }
    return mapped;
  }

  error(key: string, reason: string): ValidationError {
    return new ValidationError(`${this.where}: ${this.fieldPath(key)}`, reason);
  }

  private fieldPath(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}
