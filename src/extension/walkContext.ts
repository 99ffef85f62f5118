import type { CryptoStats } from '../audit/auditLog';
import { UnsupportedQueryError } from '../errors';
import type { RuntimeModel, RuntimeSchema } from './runtimeSchema';

/** State shared by the walkers while one query is rewritten. */
export class WalkContext {
  readonly stats: CryptoStats = { encrypted: 0, decrypted: 0, indexed: 0 };
  /**
   * Which index key a unique lookup hashes with: 0 is the primary. While an index-key rotation
   * is in progress, top-level unique operations retry with the next key when nothing matched.
   */
  uniqueAttempt = 0;
  /** Set when a unique where hashed through an index field, i.e. another attempt could match. */
  usedUniqueIndex = false;

  constructor(
    readonly schema: RuntimeSchema,
    readonly operation: string,
    private readonly onRefuse: (error: UnsupportedQueryError, operation: string) => void,
  ) {}

  model(name: string): RuntimeModel {
    const model = this.schema.get(name);
    // The generated map covers every model in the schema; a miss means the map is stale.
    if (!model) throw new UnsupportedQueryError(name, '*', this.operation, 'the model is not in the encryption map; re-run prisma generate');
    return model;
  }

  refuse(model: string, field: string, operator: string, reason: string): never {
    const error = new UnsupportedQueryError(model, field, operator, reason);
    this.onRefuse(error, this.operation);
    throw error;
  }
}

export type Obj = Record<string, unknown>;

export function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date) && !Buffer.isBuffer(value);
}

/** Applies `fn` to a value that Prisma accepts as one item or an array of items. */
export function mapOneOrMany<T>(value: unknown, fn: (item: unknown) => T): T | T[] {
  return Array.isArray(value) ? value.map(fn) : fn(value);
}
