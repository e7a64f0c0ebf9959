import { GatewayError } from '../errors.js';

/**
 * Collects every problem of one input so that the caller sees all of them in
 * a single INVALID_ARGUMENT (docs/reference.md §1: "Validation reports every problem").
 */
export class Problems {
  readonly #list: string[] = [];

  add(problem: string): void {
    this.#list.push(problem);
  }

  get isEmpty(): boolean {
    return this.#list.length === 0;
  }

  toError(subject: string): GatewayError {
    return new GatewayError('INVALID_ARGUMENT', `invalid ${subject}: ${this.#list.join('; ')}`, {
      problems: [...this.#list],
    });
  }

  throwIfAny(subject: string): void {
    if (!this.isEmpty) throw this.toError(subject);
  }
}

export type JsonObject = Record<string, unknown>;

export const isJsonObject = (value: unknown): value is JsonObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
