import { Ajv, type AnySchemaObject, type ValidateFunction } from 'ajv';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv2020 } from 'ajv/dist/2020.js';

type AjvLike = Ajv | Ajv2019 | Ajv2020;

/**
 * json.isSchemaValid: compiles each distinct schema text once (compiling costs far more than validating) and keeps
 * a bounded LRU, since schemas may come from a remote service and vary without limit.
 */
export class SchemaValidator {
  private readonly cache = new Map<string, { fn: ValidateFunction; ajv: AjvLike; schema: AnySchemaObject | boolean }>();
  private readonly instances = new Map<string, AjvLike>();

  constructor(private readonly maxEntries = 256) {}

  /** `schemaText` must be a JSON Schema (throws otherwise); a `valueText` that is not JSON is simply invalid. */
  isValid(schemaText: string, valueText: string): boolean {
    const fn = this.compiled(schemaText);
    let value: unknown;
    try {
      value = JSON.parse(valueText);
    } catch {
      return false;
    }
    return fn(value) === true;
  }

  private compiled(schemaText: string): ValidateFunction {
    const hit = this.cache.get(schemaText);
    if (hit) {
      this.cache.delete(schemaText);
      this.cache.set(schemaText, hit);
      return hit.fn;
    }
    let schema: unknown;
    try {
      schema = JSON.parse(schemaText);
    } catch (err) {
      throw new Error(`invalid JSON schema: ${(err as Error).message}`);
    }
    if (typeof schema !== 'boolean' && (typeof schema !== 'object' || schema === null || Array.isArray(schema))) {
      throw new Error('invalid JSON schema: expected an object or a boolean');
    }
    const ajv = this.instanceFor(schema);
    let fn: ValidateFunction;
    try {
      fn = ajv.compile(schema as AnySchemaObject);
    } catch (err) {
      throw new Error(`invalid JSON schema: ${(err as Error).message}`);
    }
    this.cache.set(schemaText, { fn, ajv, schema: schema as AnySchemaObject | boolean });
    if (this.cache.size > this.maxEntries) {
      const [oldestKey, oldest] = this.cache.entries().next().value as [string, { ajv: AjvLike; schema: AnySchemaObject | boolean }];
      this.cache.delete(oldestKey);
      // Ajv keeps its own per-object compile cache; drop the entry so evicted schemas can be collected.
      if (typeof oldest.schema === 'object') oldest.ajv.removeSchema(oldest.schema);
    }
    return fn;
  }

  /** Picks the dialect from `$schema`; draft-07 (Ajv's default) otherwise. */
  private instanceFor(schema: unknown): AjvLike {
    const declared = typeof schema === 'object' && schema !== null ? (schema as { $schema?: unknown }).$schema : undefined;
    const dialect = typeof declared === 'string' && declared.includes('2020-12') ? '2020' : typeof declared === 'string' && declared.includes('2019-09') ? '2019' : '07';
    let ajv = this.instances.get(dialect);
    if (!ajv) {
      // strict:false accepts schemas written for other validators (unknown keywords and formats are ignored);
      // addUsedSchema:false keeps two remote schemas that reuse an $id from clashing.
      const opts = { strict: false, addUsedSchema: false, validateFormats: false, allErrors: false };
      ajv = dialect === '2020' ? new Ajv2020(opts) : dialect === '2019' ? new Ajv2019(opts) : new Ajv(opts);
      this.instances.set(dialect, ajv);
    }
    return ajv;
  }
}
