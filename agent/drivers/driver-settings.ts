import { ValidationError } from '../../src/errors';

/**
 * Reads a driver's settings (Binding.settings, all strings) into typed values, refusing names
 * the driver does not know so that a typo is a NACK, not a silently ignored setting.
 */
export class DriverSettings {
  constructor(
    private readonly driver: string,
    private readonly settings: Readonly<Record<string, string>>,
  ) {}

  /** Throws on a name that is neither in `known` nor matched by one of `patterns`. */
  onlyKnown(known: readonly string[], patterns: readonly RegExp[] = []): void {
    for (const name of Object.keys(this.settings)) {
      if (known.includes(name) || patterns.some((p) => p.test(name))) continue;
      const expected = [...known, ...patterns.map((p) => p.source)].join(', ');
      throw new ValidationError(`settings.${name}`, `is not a setting of the ${this.driver} driver (known: ${expected || 'none'})`);
    }
  }

  names(): string[] {
    return Object.keys(this.settings);
  }

  string(name: string, fallback: string): string {
    return this.settings[name] ?? fallback;
  }

  number(name: string, fallback: number, min: number, max: number): number {
    const text = this.settings[name];
    if (text === undefined) return fallback;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new ValidationError(`settings.${name}`, `"${text}" is not a number from ${min} to ${max}`);
    }
    return n;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const n = this.number(name, fallback, min, max);
    if (!Number.isInteger(n)) throw new ValidationError(`settings.${name}`, `"${this.settings[name]}" is not a whole number`);
    return n;
  }

  boolean(name: string, fallback: boolean): boolean {
    const text = this.settings[name];
    if (text === undefined) return fallback;
    if (text === 'true') return true;
    if (text === 'false') return false;
    throw new ValidationError(`settings.${name}`, `"${text}" is not true or false`);
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const text = this.settings[name];
    if (text === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(text)) {
      throw new ValidationError(`settings.${name}`, `"${text}" is not one of ${allowed.join(', ')}`);
    }
    return text as T;
  }
}
