// The passcode mail as renderOtpMail writes it (every locale × kind, with and
// without branding, with hostile tenant names), the custom template language
// (checkTemplate's refusals, renderTemplate's escaping) and renderCustomMail.
import { describe, expect, it } from "vitest";
import { LOCALES } from "../../src/domain/locales.js";
import { checkTemplate, renderTemplate, type TemplateValues } from "../../src/domain/template-language.js";
import { renderCustomMail, renderOtpMail, type MailFacts } from "../../src/mail/templates.js";

const CODE = "482916";

const BRANDING = {
  // An & in the query: it must come out as &amp; inside the attribute.
  logoUrl: "https://cdn.example.com/logo.png?v=1&size=2x",
  accentColor: "#0a7d5a",
  supportUrl: "https://help.example.com/otp?from=mail&lang=x",
} as const;

function facts(overrides: Partial<MailFacts> = {}): MailFacts {
  return {
    code: CODE,
    minutes: 10,
    tenantName: "Harbour Yoga",
    email: "jane.doe@example.com",
    branding: { logoUrl: null, accentColor: null, supportUrl: null },
    ...overrides,
  };
}

/** What each locale says, as plain text (HTML escaping applied by the test where needed). */
const WORDS = {
  en: {
    subject: "Your Harbour Yoga code: 482916",
    login: "Use this code to sign in to Harbour Yoga:",
    signup: "Welcome to Harbour Yoga! Use this code to confirm your email address:",
    expiry10: "The code expires in 10 minutes.",
    expiry1: "The code expires in 1 minute.",
    help: "Need help?",
  },
  es: {
    subject: "Tu código de Harbour Yoga: 482916",
    login: "Usa este código para iniciar sesión en Harbour Yoga:",
    signup: "¡Te damos la bienvenida a Harbour Yoga! Usa este código para confirmar tu correo electrónico:",
    expiry10: "El código caduca en 10 minutos.",
    expiry1: "El código caduca en 1 minuto.",
    help: "¿Necesitas ayuda?",
  },
  "pt-br": {
    subject: "Seu código do Harbour Yoga: 482916",
    login: "Use este código para entrar no Harbour Yoga:",
    signup: "Boas-vindas ao Harbour Yoga! Use este código para confirmar seu e-mail:",
    expiry10: "O código expira em 10 minutos.",
    expiry1: "O código expira em 1 minuto.",
    help: "Precisa de ajuda?",
  },
  fr: {
    subject: "Votre code Harbour Yoga : 482916",
    login: "Utilisez ce code pour vous connecter à Harbour Yoga :",
    signup: "Bienvenue sur Harbour Yoga ! Utilisez ce code pour confirmer votre adresse e-mail :",
    expiry10: "Le code expire dans 10 minutes.",
    expiry1: "Le code expire dans 1 minute.",
    help: "Besoin d'aide ?",
  },
} as const;

/** The same escaping the HTML part must apply, written out independently. */
function html(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

const CASES = LOCALES.flatMap((locale) => (["login", "signup"] as const).map((kind) => ({ locale, kind })));

it("covers exactly the four documented locales", () => {
  expect([...LOCALES].sort()).toEqual(["en", "es", "fr", "pt-br"]);
});

describe.each(CASES)("renderOtpMail($locale, $kind)", ({ locale, kind }) => {
  const words = WORDS[locale];
  const other = kind === "login" ? "signup" : "login";

  it("writes subject, text and HTML with the code and the expiry in the locale's words", () => {
    const mail = renderOtpMail(locale, kind, facts());
    expect(mail.subject).toBe(words.subject);
    expect(mail.text).toContain(words[kind]);
    expect(mail.text).not.toContain(words[other]);
    expect(mail.text).toContain(CODE);
    expect(mail.text).toContain(words.expiry10);
    expect(mail.html).toContain(html(words[kind]));
    expect(mail.html).not.toContain(html(words[other]));
    expect(mail.html).toContain(`>${CODE}</span>`);
    expect(mail.html).toContain(html(words.expiry10));
    expect(mail.html).toContain(`<html lang="${locale}">`);
    // Without branding: no logo, no help link, the default accent.
    expect(mail.html).not.toContain("<img");
    expect(mail.html).not.toContain("<a ");
    expect(mail.text).not.toContain(words.help);
    expect(mail.html).toContain("#1f6feb");
  });

  it("says 1 minute in the singular", () => {
    const mail = renderOtpMail(locale, kind, facts({ minutes: 1 }));
    expect(mail.text).toContain(words.expiry1);
    expect(mail.html).toContain(html(words.expiry1));
    expect(mail.text).not.toContain(words.expiry10);
  });

  it("carries the branding: logo, accent colour and support link in HTML, the support link in text", () => {
    const mail = renderOtpMail(locale, kind, facts({ branding: BRANDING }));
    expect(mail.html).toContain(`<img src="${html(BRANDING.logoUrl)}"`);
    expect(mail.html).toContain(`alt="Harbour Yoga"`);
    expect(mail.html).toContain(`border-top:4px solid ${BRANDING.accentColor}`);
    expect(mail.html).toContain(`border:2px solid ${BRANDING.accentColor}`);
    expect(mail.html).not.toContain("#1f6feb");
    expect(mail.html).toContain(`<a href="${html(BRANDING.supportUrl)}" style="color:${BRANDING.accentColor}">${html(words.help)}</a>`);
    // The raw (unescaped) & never appears inside an attribute.
    expect(mail.html).not.toContain(BRANDING.supportUrl);
    expect(mail.text).toContain(`${words.help} ${BRANDING.supportUrl}`);
    expect(mail.text).not.toContain("&amp;");
    // The code and expiry are still there.
    expect(mail.text).toContain(CODE);
    expect(mail.html).toContain(html(words.expiry10));
  });
});

describe("renderOtpMail with hostile tenant names", () => {
  const SCRIPT = `<script>alert(1)</script> & "Co"`;

  it.each(LOCALES)("escapes markup in the HTML part and leaves the text part literal (%s)", (locale) => {
    const mail = renderOtpMail(locale, "signup", facts({ tenantName: SCRIPT, branding: BRANDING }));
    expect(mail.html).not.toMatch(/<script/i);
    expect(mail.html).not.toContain(`"Co"`);
    expect(mail.html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;");
    // In the logo's alt attribute too.
    expect(mail.html).toContain(`alt="&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;"`);
    expect(mail.text).toContain(SCRIPT);
    expect(mail.text).not.toContain("&lt;");
    expect(mail.subject).toContain(SCRIPT);
    expect(mail.subject).not.toMatch(/[\r\n]/);
  });

  it.each(LOCALES)("keeps the subject on one line when the name holds CR/LF (%s)", (locale) => {
    const name = "Evil Corp\r\nBcc: victim@example.com\r\n\r\n<b>x</b>";
    for (const kind of ["login", "signup"] as const) {
      const mail = renderOtpMail(locale, kind, facts({ tenantName: name }));
      expect(mail.subject).not.toMatch(/[\r\n\u2028\u2029]/);
      expect(mail.subject).toContain("Evil Corp Bcc: victim@example.com <b>x</b>");
      expect(mail.subject).toContain(CODE);
      expect(mail.html).not.toContain("<b>x</b>");
      expect(mail.html).toContain("&lt;b&gt;x&lt;/b&gt;");
      // The <title> is one line as well.
      expect(mail.html).toMatch(/<title>[^\r\n<]*<\/title>/);
    }
  });

  it("falls back to English for a locale it does not have", () => {
    const mail = renderOtpMail("de", "login", facts());
    expect(mail.subject).toBe(WORDS.en.subject);
    expect(mail.html).toContain(`<html lang="en">`);
  });
});

const VALID = { subject: "Your {{tenant_name}} code", text: "Code: {{code}}", html: "<p>{{ code }}</p>" };

describe("checkTemplate", () => {
  it("accepts a well-formed template (spaces inside braces allowed, subject without {{code}})", () => {
    expect(checkTemplate(VALID)).toEqual([]);
    expect(
      checkTemplate({
        subject: "{{code}} {{expires_in_minutes}} {{tenant_name}} {{email}} {{support_url}} {{logo_url}}",
        text: "{{code}}",
        html: "{{code}}",
      }),
    ).toEqual([]);
  });

  it("rejects a part that could render too large: each placeholder counts at its longest value, escaped", () => {
    // 60 KB of {{logo_url}} with a 2,048-character logo URL full of "&" would render to some 55 million characters.
    const bomb = `{{code}}${"{{logo_url}}".repeat(5_000)}`;
    const problems = checkTemplate({ ...VALID, html: bomb });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.part).toBe("html");
    expect(problems[0]!.problem).toContain("fewer placeholders");
    // A large template with a handful of placeholders is fine.
    expect(checkTemplate({ ...VALID, html: `<p>{{code}} {{logo_url}} {{support_url}}</p>${"x".repeat(199_000)}` })).toEqual([]);
  });

  it("rejects an unknown placeholder, naming it and the part", () => {
    const problems = checkTemplate({ ...VALID, text: "Code: {{code}} or {{codex}}" });
    expect(problems).toHaveLength(1);
    expect(problems[0]!.part).toBe("text");
    expect(problems[0]!.problem).toContain("unknown placeholder {{codex}}");
    expect(problems[0]!.problem).toContain("{{code}}");
  });

  it("rejects an unknown placeholder in the subject", () => {
    const problems = checkTemplate({ ...VALID, subject: "Hello {{name}}" });
    expect(problems.map((p) => p.part)).toEqual(["subject"]);
    expect(problems[0]!.problem).toContain("{{name}}");
  });

  it.each(["{{code", "code}}", "{{ }}", "{{}}", "{{CODE}}", "{{code}", "{{ code }} {{"])("rejects the malformed placeholder %j", (bad) => {
    for (const part of ["subject", "text", "html"] as const) {
      const template = { ...VALID, [part]: `${part === "subject" ? "" : "{{code}} "}${bad}` };
      const problems = checkTemplate(template);
      expect(problems, `${part}: ${JSON.stringify(template)}`).toHaveLength(1);
      expect(problems[0]!.part).toBe(part);
      expect(problems[0]!.problem).toMatch(/malformed placeholder|unknown placeholder/);
    }
  });

  it("rejects a text part without {{code}}", () => {
    expect(checkTemplate({ ...VALID, text: "Your code is {{expires_in_minutes}}" })).toEqual([
      { part: "text", problem: "must contain {{code}}" },
    ]);
  });

  it("rejects an HTML part without {{code}}", () => {
    expect(checkTemplate({ ...VALID, html: "<p>code</p>" })).toEqual([{ part: "html", problem: "must contain {{code}}" }]);
  });

  it("reports every bad part at once", () => {
    const problems = checkTemplate({ subject: "a\nb", text: "", html: "{{nope}}" });
    expect(problems.map((p) => p.part).sort()).toEqual(["html", "subject", "text"]);
  });

  it.each(["Line one\nline two", "Line one\r\nline two", "Trailing\r"])("rejects the multi-line subject %j", (subject) => {
    expect(checkTemplate({ ...VALID, subject })).toEqual([{ part: "subject", problem: "must be a single line" }]);
  });
});

describe("renderTemplate", () => {
  const values: TemplateValues = {
    code: CODE,
    expires_in_minutes: "5",
    tenant_name: "{{code}} <i>",
    email: "x@example.com",
    support_url: "",
    logo_url: "",
  };

  it("never expands placeholders found inside values", () => {
    expect(renderTemplate("[{{tenant_name}}] {{code}}", values, "text")).toBe(`[{{code}} <i>] ${CODE}`);
    expect(renderTemplate("[{{tenant_name}}] {{code}}", values, "html")).toBe(`[{{code}} &lt;i&gt;] ${CODE}`);
  });

  it("throws on a template that was never checked", () => {
    expect(() => renderTemplate("{{bogus}}", values, "text")).toThrow(/unknown placeholder/);
  });
});

describe("renderCustomMail", () => {
  const template = {
    subject: "{{tenant_name}}: {{code}} for {{email}}",
    text: "Hi {{email}}, {{code}} from {{tenant_name}}, valid {{expires_in_minutes}} min. Help: {{support_url}} Logo: {{logo_url}}",
    html: `<p class="x">Hi {{email}}, <b>{{code}}</b> from {{tenant_name}} ({{expires_in_minutes}} min)</p><a href="{{support_url}}">help</a><img src="{{logo_url}}">`,
  };
  const hostile = facts({
    tenantName: `<script>alert(1)</script> & "Co"\r\nBcc: evil@x.com`,
    email: "a<b>@x.com",
    minutes: 7,
    branding: { logoUrl: BRANDING.logoUrl, accentColor: null, supportUrl: `https://help.example.com/"><script>` },
  });

  it("is a valid template to begin with", () => {
    expect(checkTemplate(template)).toEqual([]);
  });

  it("escapes every value in the HTML part and keeps the template's own markup", () => {
    const mail = renderCustomMail(template, hostile);
    expect(mail.html).toContain(`<p class="x">Hi a&lt;b&gt;@x.com, <b>${CODE}</b> from &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;`);
    expect(mail.html).toContain("(7 min)");
    expect(mail.html).toContain(`<a href="https://help.example.com/&quot;&gt;&lt;script&gt;">help</a>`);
    expect(mail.html).toContain(`<img src="${html(BRANDING.logoUrl)}">`);
    expect(mail.html).not.toMatch(/<script/i);
    expect(mail.html).not.toContain("a<b>");
  });

  it("leaves values literal in the text part", () => {
    const mail = renderCustomMail(template, hostile);
    expect(mail.text).toBe(
      `Hi a<b>@x.com, ${CODE} from <script>alert(1)</script> & "Co"\r\nBcc: evil@x.com, valid 7 min. ` +
        `Help: https://help.example.com/"><script> Logo: ${BRANDING.logoUrl}`,
    );
  });

  it("keeps the subject on one line, unescaped", () => {
    const mail = renderCustomMail(template, hostile);
    expect(mail.subject).toBe(`<script>alert(1)</script> & "Co" Bcc: evil@x.com: ${CODE} for a<b>@x.com`);
  });

  it("renders absent branding as empty strings", () => {
    const mail = renderCustomMail(template, facts());
    expect(mail.text).toContain("Help:  Logo: ");
    expect(mail.html).toContain(`<a href="">help</a><img src="">`);
  });
});
