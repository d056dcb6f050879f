// Typed argument entry for the run dialog: what input a parameter gets (from its annotation) and
// how the text a user typed becomes a JSON value, or a message that says what is wrong.
import type { Parameter, WireValue } from "../api/types";
import { hasSchema, initialValue, validate, type JSONSchema } from "../views/schemaform";

export type FieldKind = "int" | "float" | "str" | "bool" | "list" | "dict" | "json";

export interface Field {
  name: string;
  kind: FieldKind;
  optional: boolean; // `X | None` / `Optional[X]`: empty means None
  annotation: string; // as the worker declared it ("" when none)
  hasDefault: boolean;
  /** the default as text for the input, when it is plain JSON; else null (shown, not editable) */
  defaultText: string | null;
  defaultLabel: string; // how the default reads (also for non-JSON defaults)
  keywordOnly: boolean;
  /** the parameter's JSON Schema: its input is then a schema form (views/schemaform.tsx) */
  schema: JSONSchema | null;
  /** the default itself when it is plain JSON (undefined: none, or not JSON) */
  defaultValue: unknown;
}

const SIMPLE: Record<string, FieldKind> = {
  int: "int", float: "float", str: "str", bool: "bool", list: "list", dict: "dict",
  tuple: "list", set: "list", frozenset: "list", List: "list", Dict: "dict", Tuple: "list",
  Set: "list", Sequence: "list", Mapping: "dict", Any: "json", object: "json",
};

/** The field kind of an annotation ("int", "list[int]", "Optional[str]", "dict[str, int] | None"). */
export function fieldKind(annotation: string | null | undefined): { kind: FieldKind; optional: boolean } {
  let text = (annotation ?? "").trim().replace(/^typing\./, "");
  if (!text) return { kind: "json", optional: false };
  let optional = false;
  const parts = splitTop(text, "|");
  if (parts.length > 1) {
    const rest = parts.filter((p) => p !== "None" && p !== "NoneType");
    optional = rest.length < parts.length;
    if (rest.length !== 1) return { kind: "json", optional };
    text = rest[0];
  }
  const optionalMatch = /^(?:typing\.)?Optional\[(.*)\]$/.exec(text);
  if (optionalMatch) {
    optional = true;
    text = optionalMatch[1].trim();
  }
  const head = text.split("[", 1)[0].trim().replace(/^typing\./, "");
  return { kind: SIMPLE[head] ?? "json", optional };
}

function splitTop(text: string, separator: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === "[" || c === "(") depth += 1;
    else if (c === "]" || c === ")") depth -= 1;
    else if (c === separator && depth === 0) {
      parts.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(text.slice(start).trim());
  return parts;
}

/** Whether a decoded wire value is plain JSON (no `{"$": ...}` objects inside). */
function plain(value: unknown): boolean {
  if (value === null || typeof value !== "object") return true;
  if (Array.isArray(value)) return value.every(plain);
  if ("$" in (value as Record<string, unknown>)) return false;
  return Object.values(value as Record<string, unknown>).every(plain);
}

function describeWire(kind: FieldKind, value: WireValue): string {
  const v = value.v as Record<string, unknown> | null;
  if (v === null) return "None"; // as Python spells it
  if (kind === "float" && typeof value.v === "number" && Number.isInteger(value.v)) return value.v.toFixed(1);
  if (v && typeof v === "object" && !Array.isArray(v) && typeof v.$ === "string") {
    if (v.$ === "float") return String(v.v ?? "float");
    if (v.$ === "tuple" || v.$ === "set" || v.$ === "frozenset") return `${v.$} ${JSON.stringify(v.items ?? [])}`;
    return `<${v.$}>`;
  }
  return JSON.stringify(value.v);
}

export function fieldsOf(parameters: Parameter[]): Field[] {
  return parameters
    .filter((p) => p.kind !== "var_positional" && p.kind !== "var_keyword")
    .map((p) => {
      const { kind, optional } = fieldKind(p.annotation);
      const hasDefault = p.default !== undefined && p.default !== null && typeof p.default === "object" && "v" in p.default;
      let defaultText: string | null = null;
      let defaultLabel = "";
      let defaultValue: unknown = undefined;
      if (hasDefault) {
        const value = (p.default as WireValue).v;
        defaultLabel = describeWire(kind, p.default as WireValue);
        if (plain(value) && !(p.default as WireValue).refs?.length) {
          defaultText = toText(kind, value);
          defaultValue = value;
        } else if (hasSchema(p.schema) && "default" in p.schema) {
          // a default that travels as a pickle (an enum member): its JSON form, from the schema
          defaultValue = p.schema.default;
          defaultLabel = p.schema.default === null ? "None" : JSON.stringify(p.schema.default);
        }
      }
      return {
        name: p.name, kind, optional, annotation: p.annotation ?? "", hasDefault, defaultText, defaultLabel,
        keywordOnly: p.kind === "keyword_only", schema: hasSchema(p.schema) ? p.schema : null, defaultValue,
      };
    });
}

/** A value as the text its input shows (bool fields use "true"/"false"). */
export function toText(kind: FieldKind, value: unknown): string {
  if (value === null) return "";
  if (kind === "str" && typeof value === "string") return value;
  if (kind === "float" && typeof value === "number" && Number.isInteger(value)) return value.toFixed(1);
  if ((kind === "int" || kind === "float") && typeof value === "number") return String(value);
  if (kind === "bool") return value ? "true" : "false";
  return JSON.stringify(value);
}

export type Parsed = { ok: true; value: unknown; omit: boolean } | { ok: false; message: string };

const INT = /^[+-]?\d+$/;
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The JSON value of what a user typed into a field, or why it is not one. */
export function parseField(field: Field, raw: string): Parsed {
  const text = field.kind === "str" ? raw : raw.trim();
  if (text === "" && field.kind !== "bool") {
    if (field.hasDefault) return { ok: true, value: undefined, omit: true };
    if (field.optional) return { ok: true, value: null, omit: false };
    if (field.kind === "str") return { ok: true, value: "", omit: false };
    return { ok: false, message: "a value is required" };
  }
  switch (field.kind) {
    case "int": {
      if (!INT.test(text)) return { ok: false, message: `"${clip(text)}" is not an integer (e.g. 42)` };
      const n = Number(text);
      if (!Number.isSafeInteger(n)) {
        return { ok: false, message: "the integer is too large to send exactly (at most ±9007199254740991)" };
      }
      return { ok: true, value: n, omit: false };
    }
    case "float": {
      if (!FLOAT.test(text)) return { ok: false, message: `"${clip(text)}" is not a number (e.g. 0.5 or 1e-3)` };
      const n = Number(text);
      if (!Number.isFinite(n)) return { ok: false, message: "the number is too large" };
      return { ok: true, value: n, omit: false };
    }
    case "str":
      return { ok: true, value: raw, omit: false };
    case "bool":
      if (text === "true" || text === "false") return { ok: true, value: text === "true", omit: false };
      if (text === "" && field.hasDefault) return { ok: true, value: undefined, omit: true };
      if (text === "" && field.optional) return { ok: true, value: null, omit: false };
      return { ok: false, message: "choose true or false" };
    default: {
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        const hint = field.kind === "list" ? "a JSON list, e.g. [1, 2, 3]"
          : field.kind === "dict" ? 'a JSON object, e.g. {"key": 1}'
            : 'a JSON value, e.g. 3, "text", [1, 2] or {"a": 1}';
        return { ok: false, message: `not valid JSON (${shortJsonError(error)}): enter ${hint}` };
      }
      if (field.kind === "list" && !Array.isArray(value) && !(value === null && field.optional)) {
        return { ok: false, message: "must be a JSON list, e.g. [1, 2, 3]" };
      }
      if (field.kind === "dict" && (value === null || typeof value !== "object" || Array.isArray(value))
        && !(value === null && field.optional)) {
        return { ok: false, message: 'must be a JSON object, e.g. {"key": 1}' };
      }
      return { ok: true, value, omit: false };
    }
  }
}

function clip(text: string): string {
  return text.length > 40 ? text.slice(0, 37) + "…" : text;
}

function shortJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^JSON\.parse: /, "").replace(/ in JSON at position (\d+).*$/, " at character $1").slice(0, 80);
}

/** Every field parsed: the keyword arguments to submit, or the message of each bad field. */
export function collect(fields: Field[], texts: Record<string, string>):
  { ok: true; kwargs: Record<string, unknown> } | { ok: false; errors: Record<string, string> } {
  const kwargs: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const parsed = parseField(field, texts[field.name] ?? "");
    if (!parsed.ok) errors[field.name] = parsed.message;
    else if (!parsed.omit) kwargs[field.name] = parsed.value;
  }
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, kwargs };
}

/** The text a field starts with: its default when that is plain JSON, else empty. */
export function initialText(field: Field): string {
  if (field.defaultText !== null) return field.defaultText;
  return field.kind === "bool" && !field.hasDefault && !field.optional ? "false" : "";
}

// ------------------------------------------------------------------ fields with a JSON Schema

/** The value a schema field starts with: its plain default, else (when it has a default that is
 * not plain JSON) undefined, meaning "the default", else what an empty form of the schema holds. */
export function initialSchemaValue(field: Field): unknown {
  if (field.defaultValue !== undefined) return field.defaultValue;
  if (field.hasDefault || !field.schema) return undefined;
  return initialValue(field.schema);
}

/** Every field checked (schema fields by `validate`, the others parsed from their text): the
 * keyword arguments to submit, or the problems by field path (`values[1]`, `settings.name`). */
export function collectArguments(fields: Field[], texts: Record<string, string>, values: Record<string, unknown>):
  { ok: true; kwargs: Record<string, unknown> } | { ok: false; errors: Record<string, string> } {
  const kwargs: Record<string, unknown> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    if (field.schema) {
      const value = values[field.name];
      if (value === undefined && field.hasDefault) continue; // the workflow's default
      if (field.hasDefault && JSON.stringify(value) === JSON.stringify(field.defaultValue)) {
        kwargs[field.name] = value; // the default as it is (`x: int = None` is not an int, and is fine)
        continue;
      }
      Object.assign(errors, validate(field.schema, value, field.name));
      kwargs[field.name] = value;
      continue;
    }
    const parsed = parseField(field, texts[field.name] ?? "");
    if (!parsed.ok) errors[field.name] = parsed.message;
    else if (!parsed.omit) kwargs[field.name] = parsed.value;
  }
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, kwargs };
}

/** Which field a problem's path belongs to (`values[1]` -> `values`). */
export function fieldOfPath(path: string): string {
  return path.split(/[.[]/, 1)[0];
}
