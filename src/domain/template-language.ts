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
