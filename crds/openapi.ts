/**
 * The pieces of a structural OpenAPI v3 schema (with Kubernetes' extensions) that crds/generate.ts builds the
 * CRD from, and the leaves it takes from the zod schema of common/.
 */
import { z } from 'zod';

/** The part of a structural OpenAPI v3 schema (with Kubernetes' extensions) that the CRD uses. */
export interface Schema {
  type?: string;
  description?: string;
  format?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  default?: unknown;
  anyOf?: Schema[];
  allOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: Validation[];
}

/** One CEL rule; `messageExpression` (CEL too) builds the message from the bad value. */
export interface Validation {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: string;
}

/** What z.toJSONSchema may give for a leaf (or a list's items) that a structural schema takes as it is. */
const LEAF_KEYWORDS = new Set([
  'type',
  'enum',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'default',
]);

/** A zod leaf's JSON schema as a CRD leaf: type and description first, then Kubernetes' keywords, then zod's. */
function leaf(json: Record<string, unknown>, description: string, kube: Schema): Schema {
  const { type, ...rest } = json;
  return { type: type as string, description, ...kube, ...rest };
}

/**
 * A leaf of the CRD taken from the zod schema of common/: its type, enum, pattern, bounds and default (and
 * for a list of scalars, those of its items), with `description` and the Kubernetes-only keywords of `kube`
 * (`kube.items` describes the items of a list) added. Throws when zod gives anything that a leaf of a
 * structural schema cannot hold, so a change of the zod schema that needs more shows here.
 */
export function fromZod(schema: z.ZodType, description: string, kube: Schema = {}): Schema {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as Record<string, unknown>;
  delete json.$schema;
  if (json.format === 'starts_with') delete json.format; // zod's name for startsWith(); its pattern says the same
  const { items, ...rest } = json as { items?: Record<string, unknown> } & Record<string, unknown>;
  const unknown = [
    ...Object.keys(rest).filter((k) => !LEAF_KEYWORDS.has(k)),
    ...Object.keys(items ?? {}).filter((k) => !LEAF_KEYWORDS.has(k)),
    ...[rest, ...(items ? [items] : [])].filter((j) => typeof j.type !== 'string').map(() => 'no single type'),
  ];
  if (unknown.length > 0) throw new Error(`zod gives ${unknown.join(', ')} for the CRD leaf ${JSON.stringify(json)}`);
  const { items: kubeItems, ...kubeRest } = kube;
  const out = leaf(rest, description, kubeRest);
  if (items) {
    const { description: itemDescription, ...itemKube } = kubeItems ?? {};
    if (!itemDescription) throw new Error(`describe the items of the CRD list "${description}"`);
    out.items = leaf(items, itemDescription, itemKube);
  }
  return out;
}

export const INT32 = { format: 'int32' } as const;
