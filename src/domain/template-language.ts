// The placeholder language of tenants' custom templates: text with
// {{ name }} placeholders and nothing else (no logic, no raw HTML
// insertion). Templates are checked when saved; values are HTML-escaped
// when rendered into an HTML part.

const PLACEHOLDERS = ["code", "expires_in_minutes", "tenant_name", "email", "support_url", "logo_url"] as const;
type Placeholder = (typeof PLACEHOLDERS)[number];
export type TemplateValues = Readonly<Record<Placeholder, string>>;

type Segment = { readonly text: string } | { readonly name: Placeholder };

class TemplateSyntaxError extends Error {
  override name = "TemplateSyntaxError";
}

const TOKEN = /\{\{\s*([a-z_]+)\s*\}\}/g;

/** Splits a template into text and placeholders; throws on anything malformed. */
function parseTemplate(source: string): readonly Segment[] {
  const segments: Segment[] = [];
  let last = 0;
  for (const m of source.matchAll(TOKEN)) {
    pushText(segments, source.slice(last, m.index));
    const name = m[1]!;
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) {
      throw new TemplateSyntaxError(`unknown placeholder {{${name}}}; use one of ${PLACEHOLDERS.map((p) => `{{${p}}}`).join(", ")}`);
    }
    segments.push({ name: name as Placeholder });
    last = m.index! + m[0].length;
  }
  pushText(segments, source.slice(last));
  return segments;
}

function pushText(segments: Segment[], text: string): void {
  if (text.includes("{{") || text.includes("}}")) {
    throw new TemplateSyntaxError(`malformed placeholder near ${JSON.stringify(text.slice(Math.max(0, text.search(/\{\{|\}\}/) - 10), 40))}`);
  }
  if (text) segments.push({ text });
}

/**
 * The most one placeholder can render to: the longest value a tenant may set
 * (a 2,048-character URL), with every character escaped in HTML ("&" is
 * five characters as "&amp;").
 */
const WORST_PLACEHOLDER = 2_048 * 5;
/**
 * How many characters a part may render to at worst. Every mail is built
 * from it, a hundred at a time: unbounded, a template of 60 KB of
 * {{logo_url}} renders to some 55 million characters, which the instance
 * builds for every code of the tenant until it runs out of memory.
 */
export const MAX_RENDERED_CHARS = 512 * 1_024;

export interface TemplateParts {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

/** What is wrong with a template, by part; empty when it may be saved. */
export function checkTemplate(parts: TemplateParts): { part: keyof TemplateParts; problem: string }[] {
  const problems: { part: keyof TemplateParts; problem: string }[] = [];
  for (const part of ["subject", "text", "html"] as const) {
    let segments: readonly Segment[];
    try {
      segments = parseTemplate(parts[part]);
    } catch (err) {
      problems.push({ part, problem: (err as Error).message });
      continue;
    }
    if (part === "subject" && /[\r\n]/.test(parts.subject)) problems.push({ part, problem: "must be a single line" });
    if (part !== "subject" && !segments.some((s) => "name" in s && s.name === "code")) {
      problems.push({ part, problem: "must contain {{code}}" });
    }
    const worst = segments.reduce((n, s) => n + ("text" in s ? s.text.length : WORST_PLACEHOLDER), 0);
    if (worst > MAX_RENDERED_CHARS) {
      problems.push({ part, problem: `could render to ${worst} characters (each placeholder up to ${WORST_PLACEHOLDER}), over ${MAX_RENDERED_CHARS}: use fewer placeholders` });
    }
  }
  return problems;
}

const HTML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Renders a checked template; `html` escapes every value. */
export function renderTemplate(source: string, values: TemplateValues, mode: "text" | "html"): string {
  return parseTemplate(source)
    .map((s) => ("text" in s ? s.text : mode === "html" ? escapeHtml(values[s.name]) : values[s.name]))
    .join("");
}
