/**
 * One form built from a JSON Schema (as pydantic's TypeAdapter writes it for a parameter's type
 * hint): the run dialogs' argument fields and the inputs' prompt forms both use it.
 *
 * API (kept small on purpose):
 * - `<SchemaForm schema value onChange disabled? label? path? errors? />` renders the editor for
 *   ONE value of `schema`: numbers and integers as number fields, strings as text (dates and
 *   datetimes as date pickers), booleans as a check box, `enum`/`const` (Python enums, Literal)
 *   as a choice, arrays as a growing list of item editors (tuples: fixed positions), objects
 *   (dataclasses, pydantic models) as a nested group of fields, `dict[str, X]` as key/value rows,
 *   `Optional[X]` as X plus a "None" box, `$ref`s into the schema's `$defs`. Anything else (a
 *   union of several types, `{}` for "any") gets a raw JSON text box. `value` is the JSON value
 *   (undefined: nothing entered yet); `onChange` receives the next one. Text that is not yet a
 *   valid number or JSON is passed on as an `Unparsed` so `validate` can name it.
 * - `validate(schema, value, path?)` returns `{ [path]: message }` for every problem (empty when
 *   the value is valid): `path` is the field's name with `[i]` and `.key` steps, as shown next to
 *   the field when `errors` is passed back to the form.
 * - `idOf(path)`: the DOM id of the input at `path` (a label's `for`, focusing the first bad field).
 * - `initialValue(schema)`: what an empty form starts from; `hasSchema(schema)`: whether a schema
 *   says anything (no schema or `{}`: callers keep a raw JSON box).
 */
import { useEffect, useState } from "preact/hooks";
import type { JSX } from "preact";

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- JSON Schema is open-ended
export type JSONSchema = { [key: string]: any };
export type FieldErrors = Record<string, string>;

/** Text the user typed that is not (yet) a value of its field: kept so the field shows it. */
export class Unparsed {
  constructor(readonly text: string, readonly message: string) {}
}

interface Props {
  schema: JSONSchema;
  value: unknown;
  onChange: (value: unknown) => void;
  disabled?: boolean;
  /** the field's name, shown as its label and used as the root of error paths */
  label?: string;
  path?: string;
  errors?: FieldErrors;
  /** the root schema, for `$ref`s (defaults to `schema`) */
  root?: JSONSchema;
  /** prefix of the inputs' DOM ids (`idOf(path, idPrefix)`), "cf-sf-" unless given */
  idPrefix?: string;
}

// ------------------------------------------------------------------ schema helpers

function resolve(schema: JSONSchema, root: JSONSchema): JSONSchema {
  let current = schema ?? {};
  for (let hops = 0; typeof current.$ref === "string" && hops < 32; hops += 1) {
    const name = current.$ref.replace(/^#\/(\$defs|definitions)\//, "");
    const target = root.$defs?.[name] ?? root.definitions?.[name];
    if (!target) break;
    const { $ref: _ref, ...rest } = current;
    current = { ...target, ...rest };
  }
  return current;
}

function variants(schema: JSONSchema): JSONSchema[] | null {
  return schema.anyOf ?? schema.oneOf ?? null;
}

/** `Optional[X]`: the X of `anyOf: [X, {type: null}]`, else null. */
function nullableInner(schema: JSONSchema): JSONSchema | null {
  const options = variants(schema);
  if (!options) return null;
  const rest = options.filter((s) => s.type !== "null");
  return rest.length === 1 && rest.length < options.length ? rest[0] : null;
}

function choices(schema: JSONSchema): unknown[] | null {
  if (Array.isArray(schema.enum)) return schema.enum;
  if ("const" in schema) return [schema.const];
  const options = variants(schema);
  if (options && options.length > 0 && options.every((s) => Array.isArray(s.enum) || "const" in s)) {
    return options.flatMap((s) => (Array.isArray(s.enum) ? s.enum : [s.const]));
  }
  return null;
}

function typeOf(schema: JSONSchema): string | undefined {
  if (Array.isArray(schema.type)) return schema.type.find((t: string) => t !== "null");
  if (typeof schema.type === "string") return schema.type;
  if (schema.properties) return "object";
  if (schema.items || schema.prefixItems) return "array";
  return undefined;
}

export function hasSchema(schema: JSONSchema | null | undefined): schema is JSONSchema {
  return !!schema && Object.keys(schema).some((k) => k !== "title" && k !== "description" && k !== "default");
}

/** What an empty form for `schema` starts from. */
export function initialValue(schema: JSONSchema, root: JSONSchema = schema): unknown {
  const s = resolve(schema, root);
  if ("default" in s) return s.default;
  if (nullableInner(s)) return null;
  if (choices(s)) return undefined;
  switch (typeOf(s)) {
    case "object": {
      // required fields, and the optional ones that have a default (shown, so it can be seen)
      const out: Record<string, unknown> = {};
      const required = new Set<string>(s.required ?? []);
      for (const [key, sub] of Object.entries((s.properties ?? {}) as Record<string, JSONSchema>)) {
        if (!required.has(key) && !("default" in sub)) continue;
        const inner = initialValue(sub, root);
        if (inner !== undefined) out[key] = inner;
      }
      return out;
    }
    case "array":
      return Array.isArray(s.prefixItems) ? s.prefixItems.map((p: JSONSchema) => initialValue(p, root) ?? null) : [];
    case "boolean":
      return false;
    case "string":
      return s.format ? undefined : "";
    default:
      return undefined;
  }
}

/** How a schema reads to a person: "number", "list of number", "one of 'a', 'b'". */
export function describe(schema: JSONSchema, root: JSONSchema = schema): string {
  const s = resolve(schema, root);
  const inner = nullableInner(s);
  if (inner) return `${describe(inner, root)} or None`;
  const options = choices(s);
  if (options) return `one of ${options.map((o) => JSON.stringify(o)).join(", ")}`;
  const many = variants(s);
  if (many) return many.map((v) => describe(v, root)).join(" or ");
  const type = typeOf(s);
  if (type === "array") return s.items ? `list of ${describe(s.items, root)}` : "list";
  if (type === "object") return s.title ? `${s.title} object` : "object";
  if (type === "string" && s.format === "date") return "date (YYYY-MM-DD)";
  if (type === "string" && s.format === "date-time") return "date and time";
  if (type === "integer") return "integer";
  return type ?? "any JSON value";
}

// ------------------------------------------------------------------ validation

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? text.slice(0, 37) + "…" : text;
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Unparsed);

function matchesType(type: string, value: unknown): boolean {
  switch (type) {
    case "null": return value === null;
    case "boolean": return typeof value === "boolean";
    case "integer": return typeof value === "number" && Number.isInteger(value);
    case "number": return typeof value === "number" && Number.isFinite(value);
    case "string": return typeof value === "string";
    case "array": return Array.isArray(value);
    case "object": return isObject(value);
    default: return true;
  }
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

const join = (path: string, step: string | number): string =>
  typeof step === "number" ? `${path}[${step}]` : path ? `${path}.${step}` : step;

/** Every problem of `value` against `schema`, by path (`{}`: valid). */
export function validate(schema: JSONSchema, value: unknown, path = "", root: JSONSchema = schema): FieldErrors {
  const errors: FieldErrors = {};
  check(schema, value, path, root, errors);
  return errors;
}

function check(schema: JSONSchema, value: unknown, path: string, root: JSONSchema, errors: FieldErrors): void {
  const s = resolve(schema, root);
  const say = (message: string) => { if (!(path in errors)) errors[path] = message; };
  if (value instanceof Unparsed) return say(value.message);
  if (value === undefined) return say("a value is required");
  const options = variants(s);
  if (options) {
    const inner = nullableInner(s);
    if (inner) { if (value !== null) check(inner, value, path, root, errors); return; }
    if (!options.some((o) => Object.keys(validate(o, value, path, root)).length === 0)) {
      say(`expected ${describe(s, root)}, got ${show(value)}`);
    }
    return;
  }
  if (Array.isArray(s.enum) && !s.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(value))) {
    return say(`expected one of ${s.enum.map(show).join(", ")}, got ${show(value)}`);
  }
  if ("const" in s && JSON.stringify(s.const) !== JSON.stringify(value)) return say(`expected ${show(s.const)}`);
  const types: string[] = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  if (types.length && !types.some((t) => matchesType(t, value))) {
    return say(`expected ${describe(s, root)}, got ${show(value)}`);
  }
  if (typeof value === "number") {
    if (typeof s.minimum === "number" && value < s.minimum) say(`must be at least ${s.minimum}`);
    if (typeof s.maximum === "number" && value > s.maximum) say(`must be at most ${s.maximum}`);
    if (typeof s.exclusiveMinimum === "number" && value <= s.exclusiveMinimum) say(`must be more than ${s.exclusiveMinimum}`);
    if (typeof s.exclusiveMaximum === "number" && value >= s.exclusiveMaximum) say(`must be less than ${s.exclusiveMaximum}`);
  }
  if (typeof value === "string") {
    if (typeof s.minLength === "number" && value.length < s.minLength) say(`needs at least ${s.minLength} characters`);
    if (typeof s.maxLength === "number" && value.length > s.maxLength) say(`allows at most ${s.maxLength} characters`);
    if (typeof s.pattern === "string" && !new RegExp(s.pattern, "u").test(value)) say(`must match ${s.pattern}`);
    if (s.format === "date" && !DATE.test(value)) say(`expected a date (YYYY-MM-DD), got ${show(value)}`);
    if (s.format === "date-time" && !DATETIME.test(value)) say(`expected a date and time (YYYY-MM-DDTHH:MM), got ${show(value)}`);
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === "number" && value.length < s.minItems) say(`needs at least ${s.minItems} items`);
    if (typeof s.maxItems === "number" && value.length > s.maxItems) say(`allows at most ${s.maxItems} items`);
    const prefix: JSONSchema[] = s.prefixItems ?? [];
    value.forEach((item, i) => {
      const itemSchema = i < prefix.length ? prefix[i] : s.items;
      if (itemSchema && typeof itemSchema === "object") check(itemSchema, item, join(path, i), root, errors);
      else if (itemSchema === false) say(`allows at most ${prefix.length} items`);
    });
  }
  if (isObject(value)) {
    const properties: Record<string, JSONSchema> = s.properties ?? {};
    for (const key of s.required ?? []) {
      if (value[key] === undefined) errors[join(path, key)] = "a value is required";
    }
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      if (key in properties) check(properties[key], item, join(path, key), root, errors);
      else if (s.additionalProperties === false) say(`unexpected field ${show(key)}`);
      else if (s.additionalProperties && typeof s.additionalProperties === "object") {
        check(s.additionalProperties, item, join(path, key), root, errors);
      }
    }
  }
}

// ------------------------------------------------------------------ editors

interface EditorProps {
  schema: JSONSchema; root: JSONSchema; value: unknown; onChange: (v: unknown) => void;
  disabled: boolean; path: string; errors: FieldErrors; label: string; idPrefix: string;
}

/** The DOM id of the input at `path` (for labels, and to focus the first bad field). */
export function idOf(path: string, prefix = "cf-sf-"): string {
  return `${prefix}${path.replace(/[^A-Za-z0-9_-]+/g, "_")}`;
}

/** A number field that keeps what is being typed ("1.", "-") while passing parsed values on. */
function NumberInput({ value, onChange, integer, disabled, id, name, invalid }: {
  value: unknown; onChange: (v: unknown) => void; integer: boolean; disabled: boolean; id: string; name: string; invalid: boolean;
}): JSX.Element {
  const external = value instanceof Unparsed ? value.text : typeof value !== "number" ? ""
    : !integer && Number.isInteger(value) ? value.toFixed(1) : String(value); // a float reads as one: 2.0
  const [text, setText] = useState(external);
  useEffect(() => { if (parseNumber(text, integer) !== value && !(value instanceof Unparsed)) setText(external); }, [external]);
  return (
    <input id={id} name={name} class={`cf-input cf-sf-number${invalid ? " cf-invalid" : ""}`} type="text" spellcheck={false}
      inputMode={integer ? "numeric" : "decimal"} disabled={disabled} value={text} aria-invalid={invalid || undefined}
      placeholder={integer ? "integer" : "number"}
      onInput={(e) => {
        const next = (e.target as HTMLInputElement).value;
        setText(next);
        const parsed = parseNumber(next, integer);
        onChange(next.trim() === "" ? undefined : parsed !== undefined ? parsed
          : new Unparsed(next, `${show(next.trim())} is not ${integer ? "an integer (e.g. 42)" : "a number (e.g. 0.5 or 1e-3)"}`));
      }} />
  );
}

function parseNumber(text: string, integer: boolean): number | undefined {
  const t = text.trim();
  if (!(integer ? /^[+-]?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i).test(t)) return undefined;
  const n = Number(t);
  return Number.isFinite(n) && (!integer || Number.isSafeInteger(n)) ? n : undefined;
}

/** A raw JSON box: for "any" values and for unions no other editor fits. */
function JsonInput({ value, onChange, disabled, id, name, invalid }: {
  value: unknown; onChange: (v: unknown) => void; disabled: boolean; id: string; name: string; invalid: boolean;
}): JSX.Element {
  const external = value instanceof Unparsed ? value.text : value === undefined ? "" : JSON.stringify(value);
  const [text, setText] = useState(external);
  useEffect(() => {
    if (!(value instanceof Unparsed) && text.trim() !== "" && safeParse(text) !== external) setText(external);
  }, [external]);
  return (
    <textarea id={id} name={name} class={`cf-input cf-sf-json${invalid ? " cf-invalid" : ""}`} rows={text.length > 60 ? 4 : 2}
      spellcheck={false} disabled={disabled} value={text} aria-invalid={invalid || undefined}
      placeholder='JSON, e.g. 3, "text", [1, 2] or {"a": 1}'
      onInput={(e) => {
        const next = (e.target as HTMLTextAreaElement).value;
        setText(next);
        if (next.trim() === "") return onChange(undefined);
        try {
          onChange(JSON.parse(next));
        } catch {
          onChange(new Unparsed(next, 'not valid JSON: enter e.g. 3, "text", [1, 2] or {"a": 1}'));
        }
      }} />
  );
}

function safeParse(text: string): string {
  try { return JSON.stringify(JSON.parse(text)); } catch { return ""; }
}

function ErrorLine({ path, errors, idPrefix }: { path: string; errors: FieldErrors; idPrefix: string }): JSX.Element | null {
  const message = errors[path];
  if (!message) return null;
  return <div id={`${idOf(path, idPrefix)}-error`} class="cf-field-error cf-sf-error" role="alert">{path ? `${path}: ` : ""}{message}</div>;
}

function Editor(props: EditorProps): JSX.Element {
  const { root, value, onChange, disabled, path, errors } = props;
  const s = resolve(props.schema, root);
  const id = idOf(path, props.idPrefix);
  const invalid = path in errors;
  const inner = nullableInner(s);
  if (inner) {
    const isNone = value === null;
    return (
      <div class="cf-sf-nullable">
        <label class="cf-check cf-sf-none">
          <input type="checkbox" checked={isNone} disabled={disabled} aria-label={`${path || "value"} is None`}
            onChange={(e) => onChange((e.target as HTMLInputElement).checked ? null : initialValue(inner, root))} />
          None
        </label>
        {!isNone && <Editor {...props} schema={inner} />}
      </div>
    );
  }
  const options = choices(s);
  if (options) {
    const index = options.findIndex((o) => JSON.stringify(o) === JSON.stringify(value));
    return (
      <select id={id} name={path} class={`cf-input${invalid ? " cf-invalid" : ""}`} disabled={disabled} aria-invalid={invalid || undefined}
        value={index < 0 ? "" : String(index)}
        onChange={(e) => {
          const i = (e.target as HTMLSelectElement).value;
          onChange(i === "" ? undefined : options[Number(i)]);
        }}>
        {index < 0 && <option value="">choose…</option>}
        {options.map((o, i) => <option value={String(i)}>{typeof o === "string" ? o : JSON.stringify(o)}</option>)}
      </select>
    );
  }
  if (variants(s)) return <JsonInput value={value} onChange={onChange} disabled={disabled} id={id} name={path} invalid={invalid} />;
  switch (typeOf(s)) {
    case "boolean":
      return (
        <label class="cf-check">
          <input id={id} name={path} type="checkbox" checked={value === true} disabled={disabled}
            onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />
          {value === true ? "true" : "false"}
        </label>
      );
    case "integer":
    case "number":
      return <NumberInput value={value} onChange={onChange} integer={typeOf(s) === "integer"} disabled={disabled} id={id} name={path} invalid={invalid} />;
    case "string": {
      const type = s.format === "date" ? "date" : s.format === "date-time" ? "datetime-local" : "text";
      const shown = typeof value === "string" ? (type === "datetime-local" ? value.slice(0, 19) : value) : "";
      return (
        <input id={id} name={path} class={`cf-input${invalid ? " cf-invalid" : ""}`} type={type as "text"} spellcheck={false} disabled={disabled}
          value={shown} aria-invalid={invalid || undefined}
          onInput={(e) => {
            const next = (e.target as HTMLInputElement).value;
            onChange(type !== "text" && next === "" ? undefined : next);
          }} />
      );
    }
    case "array": // a list of anything (`list`): one JSON box reads better than a box per item
      if (!s.prefixItems && !hasSchema(s.items)) {
        return <JsonInput value={value} onChange={onChange} disabled={disabled} id={id} name={path} invalid={invalid} />;
      }
      return <ArrayEditor {...props} schema={s} />;
    case "object":
      if (s.properties || (s.additionalProperties && typeof s.additionalProperties === "object")) {
        return <ObjectEditor {...props} schema={s} />;
      }
      return <JsonInput value={value} onChange={onChange} disabled={disabled} id={id} name={path} invalid={invalid} />;
    default:
      return <JsonInput value={value} onChange={onChange} disabled={disabled} id={id} name={path} invalid={invalid} />;
  }
}

function ArrayEditor(props: EditorProps): JSX.Element {
  const { schema: s, root, onChange, disabled, path, errors } = props;
  const items: unknown[] = Array.isArray(props.value) ? props.value : [];
  const prefix: JSONSchema[] | null = Array.isArray(s.prefixItems) ? s.prefixItems : null;
  const itemSchema = (i: number): JSONSchema => (prefix && i < prefix.length ? prefix[i] : s.items ?? {});
  const fixed = prefix !== null && !s.items;
  const set = (i: number, v: unknown) => onChange(items.map((x, j) => (j === i ? v : x)));
  return (
    <div class="cf-sf-list" data-path={path}>
      {items.map((item, i) => (
        <div class="cf-sf-item">
          <span class="cf-sf-index">{i}</span>
          <div class="cf-sf-body">
            <Editor {...props} schema={itemSchema(i)} value={item} path={join(path, i)} label={`${path}[${i}]`}
              onChange={(v) => set(i, v)} />
            <ErrorLine path={join(path, i)} errors={errors} idPrefix={props.idPrefix} />
          </div>
          {!fixed && <button type="button" class="cf-button cf-sf-remove" disabled={disabled} title="Remove this item"
            aria-label={`remove ${join(path, i)}`} onClick={() => onChange(items.filter((_, j) => j !== i))}>×</button>}
        </div>
      ))}
      {!fixed && <button type="button" class="cf-button cf-sf-add" disabled={disabled} aria-label={`add to ${path || "list"}`}
        onClick={() => onChange([...items, initialValue(itemSchema(items.length), root)])}>+ add {describe(itemSchema(items.length), root)}</button>}
    </div>
  );
}

function ObjectEditor(props: EditorProps): JSX.Element {
  const { schema: s, root, onChange, disabled, path, errors } = props;
  const value = isObject(props.value) ? props.value : {};
  const properties: Record<string, JSONSchema> = s.properties ?? {};
  const required = new Set<string>(s.required ?? []);
  const extra = s.additionalProperties && typeof s.additionalProperties === "object" ? s.additionalProperties as JSONSchema : null;
  const set = (key: string, v: unknown) => {
    const next = { ...value };
    if (v === undefined) delete next[key];
    else next[key] = v;
    onChange(next);
  };
  const extraKeys = Object.keys(value).filter((k) => !(k in properties));
  return (
    <fieldset class="cf-sf-object" data-path={path} disabled={disabled}>
      {s.title && <legend>{s.title}</legend>}
      {Object.entries(properties).map(([key, sub]) => (
        <div class="cf-sf-prop">
          <label for={idOf(join(path, key), props.idPrefix)}><code>{key}</code>{!required.has(key) && <span class="cf-muted"> optional</span>}
            <span class="cf-muted"> {describe(sub, root)}</span></label>
          <Editor {...props} schema={sub} value={value[key]} path={join(path, key)} label={key} onChange={(v) => set(key, v)} />
          <ErrorLine path={join(path, key)} errors={errors} idPrefix={props.idPrefix} />
        </div>
      ))}
      {extra && extraKeys.map((key) => (
        <div class="cf-sf-item">
          <input class="cf-input cf-sf-key" type="text" value={key} aria-label={`key of ${join(path, key)}`} disabled={disabled}
            onChange={(e) => {
              const name = (e.target as HTMLInputElement).value;
              if (!name || name === key || name in value) return;
              onChange(Object.fromEntries(Object.entries(value).map(([k, v]) => [k === key ? name : k, v])));
            }} />
          <div class="cf-sf-body">
            <Editor {...props} schema={extra} value={value[key]} path={join(path, key)} label={key} onChange={(v) => set(key, v)} />
            <ErrorLine path={join(path, key)} errors={errors} idPrefix={props.idPrefix} />
          </div>
          <button type="button" class="cf-button cf-sf-remove" aria-label={`remove ${join(path, key)}`}
            onClick={() => { const next = { ...value }; delete next[key]; onChange(next); }}>×</button>
        </div>
      ))}
      {extra && <button type="button" class="cf-button cf-sf-add" aria-label={`add key to ${path || "object"}`}
        onClick={() => {
          let n = extraKeys.length + 1;
          while (`key${n}` in value) n += 1;
          onChange({ ...value, [`key${n}`]: initialValue(extra, root) });
        }}>+ add key</button>}
    </fieldset>
  );
}

/** The editor of one value of `schema`, with the root's error line under it. */
export function SchemaForm({ schema, value, onChange, disabled = false, label, path, errors = {}, root,
  idPrefix = "cf-sf-" }: Props): JSX.Element {
  const base = path ?? label ?? "";
  return (
    <div class="cf-sf">
      <Editor schema={schema} root={root ?? schema} value={value} onChange={onChange} disabled={disabled}
        path={base} errors={errors} label={label ?? base} idPrefix={idPrefix} />
      <ErrorLine path={base} errors={errors} idPrefix={idPrefix} />
    </div>
  );
}
