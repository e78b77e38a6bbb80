// The passcode email in each supported locale: a subject, a plain-text part
// that reads well alone, and an HTML part with inline styles only. A
// tenant's custom template replaces the built-in copy when one is chosen.
import { isLocale, type Locale } from "../domain/locales.js";
import type { Branding } from "../domain/outbox.js";
import { escapeHtml, renderTemplate, type TemplateParts, type TemplateValues } from "../domain/template-language.js";



export interface MailContent {
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface MailFacts {
  readonly code: string;
  readonly minutes: number;
  readonly tenantName: string;
  readonly email: string;
  readonly branding: Branding;
}

interface Copy {
  subject(f: MailFacts): string;
  intro: { login(f: MailFacts): string; signup(f: MailFacts): string };
  expiry(f: MailFacts): string;
  ignore: string;
  help: string;
}

const COPY: Record<Locale, Copy> = {
  en: {
    subject: (f) => `Your ${f.tenantName} code: ${f.code}`,
    intro: {
      login: (f) => `Use this code to sign in to ${f.tenantName}:`,
      signup: (f) => `Welcome to ${f.tenantName}! Use this code to confirm your email address:`,
    },
    expiry: (f) => `The code expires in ${f.minutes} ${f.minutes === 1 ? "minute" : "minutes"}.`,
    ignore: "If you didn't ask for this code, you can ignore this email.",
    help: "Need help?",
  },
  es: {
    subject: (f) => `Tu código de ${f.tenantName}: ${f.code}`,
    intro: {
      login: (f) => `Usa este código para iniciar sesión en ${f.tenantName}:`,
      signup: (f) => `¡Te damos la bienvenida a ${f.tenantName}! Usa este código para confirmar tu correo electrónico:`,
    },
    expiry: (f) => `El código caduca en ${f.minutes} ${f.minutes === 1 ? "minuto" : "minutos"}.`,
    ignore: "Si no has pedido este código, puedes ignorar este correo.",
    help: "¿Necesitas ayuda?",
  },
  "pt-br": {
    subject: (f) => `Seu código do ${f.tenantName}: ${f.code}`,
    intro: {
      login: (f) => `Use este código para entrar no ${f.tenantName}:`,
      signup: (f) => `Boas-vindas ao ${f.tenantName}! Use este código para confirmar seu e-mail:`,
    },
    expiry: (f) => `O código expira em ${f.minutes} ${f.minutes === 1 ? "minuto" : "minutos"}.`,
    ignore: "Se você não pediu este código, pode ignorar este e-mail.",
    help: "Precisa de ajuda?",
  },
  fr: {
    subject: (f) => `Votre code ${f.tenantName} : ${f.code}`,
    intro: {
      login: (f) => `Utilisez ce code pour vous connecter à ${f.tenantName} :`,
      signup: (f) => `Bienvenue sur ${f.tenantName} ! Utilisez ce code pour confirmer votre adresse e-mail :`,
    },
    expiry: (f) => `Le code expire dans ${f.minutes} ${f.minutes === 1 ? "minute" : "minutes"}.`,
    ignore: "Si vous n'avez pas demandé ce code, vous pouvez ignorer cet e-mail.",
    help: "Besoin d'aide ?",
  },
};

/** Subjects are single-line whatever a tenant name holds. */
function oneLine(value: string): string {
  return value.replace(/[\r\n\t\u2028\u2029]+/g, " ").trim();
}

export function renderOtpMail(locale: string, template: "login" | "signup", facts: MailFacts): MailContent {
  const lang = isLocale(locale) ? locale : "en";
  const copy = COPY[lang];
  const f = { ...facts, tenantName: oneLine(facts.tenantName) };
  const { logoUrl, supportUrl } = f.branding;
  const accent = f.branding.accentColor ?? "#1f6feb";
  const intro = copy.intro[template](f);
  const text = [
    intro,
    "",
    `    ${f.code}`,
    "",
    copy.expiry(f),
    "",
    copy.ignore,
    ...(supportUrl ? ["", `${copy.help} ${supportUrl}`] : []),
    "",
    `— ${f.tenantName}`,
    "",
  ].join("\n");
  const e = (fn: (x: MailFacts) => string) => fn({ ...f, tenantName: escapeHtml(f.tenantName) });
  const logo = logoUrl
    ? `<tr><td style="padding-bottom:24px"><img src="${escapeHtml(logoUrl)}" alt="${escapeHtml(f.tenantName)}" height="40" style="display:block;height:40px;border:0"></td></tr>\n`
    : "";
  const help = supportUrl
    ? `<br><a href="${escapeHtml(supportUrl)}" style="color:${accent}">${escapeHtml(copy.help)}</a>`
    : "";
  const html = `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(copy.subject(f))}</title></head>
<body style="margin:0;padding:24px;background:#f4f5f7;font-family:Arial,Helvetica,sans-serif;color:#1f2328">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:480px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;border-top:4px solid ${accent}">
${logo}<tr><td style="font-size:16px;line-height:24px">${e(copy.intro[template])}</td></tr>
<tr><td style="padding:24px 0;text-align:center"><span style="display:inline-block;font-family:'Courier New',monospace;font-size:32px;letter-spacing:8px;font-weight:bold;background:#f4f5f7;border:2px solid ${accent};border-radius:6px;padding:12px 20px;user-select:all">${f.code}</span></td></tr>
<tr><td style="font-size:14px;line-height:20px;color:#57606a">${escapeHtml(copy.expiry(f))}<br>${escapeHtml(copy.ignore)}${help}</td></tr>
<tr><td style="padding-top:24px;font-size:14px;color:#57606a">— ${escapeHtml(f.tenantName)}</td></tr>
</table></body></html>`;
  return { subject: copy.subject(f), text, html };
}

/** A tenant's own template, rendered with the same facts (already checked when saved). */
export function renderCustomMail(template: TemplateParts, facts: MailFacts): MailContent {
  const values: TemplateValues = {
    code: facts.code,
    expires_in_minutes: String(facts.minutes),
    tenant_name: facts.tenantName,
    email: facts.email,
    support_url: facts.branding.supportUrl ?? "",
    logo_url: facts.branding.logoUrl ?? "",
  };
  return {
    subject: oneLine(renderTemplate(template.subject, values, "text")),
    text: renderTemplate(template.text, values, "text"),
    html: renderTemplate(template.html, values, "html"),
  };
}
