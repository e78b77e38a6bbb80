// What a tenant's settings do to the mail that reaches the SMTP server:
// locale, sender, Reply-To, logo, a project's custom templates, header
// safety with hostile names, and business changes reaching the next send.
// Real Postgres, real SMTP.
import { beforeAll, describe, expect, it } from "vitest";
import { PgAdminStore } from "../../src/storage/admin-store.js";
import type { Json } from "../support/answers.js";
import { addTestUser } from "../support/app.js";
import {
  basic,
  decodeWords,
  env,
  freshBusinessId,
  freshEmail,
  headersOf,
  headerValues,
  legacySend,
  loginOrCreate,
  mailTo,
  rest,
  restDriver,
  stytch,
  TOKEN,
  useAdminTestEnv,
} from "../support/admin-api.js";
import { codeIn, type ReceivedMail } from "../support/smtp.js";

useAdminTestEnv();

describe("mail a tenant's settings shape", () => {
  it("a legacy send to a branded French business: French copy, its sender, Reply-To and logo", async () => {
    const id = freshBusinessId();
    const put = await rest("PUT", `/admin/v1/businesses/${id}`, {
      body: {
        name: "Dupont & Fils",
        branding: {
          sender_name: "Boulangerie Dupont",
          sender_address: "bonjour@dupont.example.com",
          reply_to: "aide@dupont.example.com",
          default_locale: "fr",
          logo_url: "https://dupont.example.com/logo.png",
          accent_color: "#c0392b",
          support_url: "https://dupont.example.com/aide",
        },
      },
    });
    expect(put.status, put.text).toBe(200);
    const customer = freshEmail("marie");
    expect((await rest("POST", "/admin/v1/users", { body: { business_id: id, email: customer } })).status).toBe(200);

    await legacySend(customer, id);
    const mail = await mailTo(customer);
    const code = codeIn(mail);
    expect(mail.subject).toBe(`Votre code Dupont & Fils : ${code}`);
    expect(mail.text).toContain("Utilisez ce code pour vous connecter à Dupont & Fils :");
    expect(mail.text).toContain("Le code expire dans 10 minutes.");
    expect(mail.text).toContain("Besoin d'aide ? https://dupont.example.com/aide");
    expect(mail.text).not.toMatch(/expires in/);
    expect(mail.html).toContain(`<html lang="fr">`);
    expect(mail.html).toContain(`<img src="https://dupont.example.com/logo.png" alt="Dupont &amp; Fils"`);
    expect(mail.html).toContain("#c0392b");
    expect(mail.html).toContain(code);

    expect(headerValues(mail.raw, "From")).toEqual(["Boulangerie Dupont <bonjour@dupont.example.com>"]);
    expect(headerValues(mail.raw, "Reply-To")).toEqual(["aide@dupont.example.com"]);
    expect(headerValues(mail.raw, "To")).toEqual([customer]);
  });

  describe("a project's custom templates on POST /v1/otps/email/login_or_create", () => {
    let projectId: string;
    let auth: string;
    let signup: Json;
    let login: Json;
    const NAME = `Acme <Labs> & "Co"`;

    beforeAll(async () => {
      const created = await restDriver.call("createProject", { name: NAME });
      projectId = created.project.project_id;
      auth = basic(projectId, created.secret);
      signup = (
        await restDriver.call("setTemplate", {
          project_id: projectId,
          kind: "TEMPLATE_KIND_SIGNUP",
          name: "welcome",
          subject: "[{{tenant_name}}] sign-up code {{code}}",
          text_body: "Hello {{email}}, your sign-up code is {{code}}, valid {{expires_in_minutes}} min.",
          html_body: `<h1>{{tenant_name}}</h1><p class="code">{{code}}</p><p>{{email}}</p>`,
        })
      ).template;
      login = (
        await restDriver.call("setTemplate", {
          project_id: projectId,
          kind: "TEMPLATE_KIND_LOGIN",
          name: "returning",
          subject: "{{tenant_name}} login {{code}}",
          text_body: "Back again? {{code}}",
          html_body: `<div id="login">{{code}}</div>`,
        })
      ).template;
    });

    it("signup_template_id: a new address gets the custom sign-up mail, values escaped in HTML only", async () => {
      const email = freshEmail("custom");
      const res = await loginOrCreate(auth, {
        email,
        expiration_minutes: 4,
        signup_template_id: signup.template_id,
        login_template_id: login.template_id,
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.user_created).toBe(true);
      const mail = await mailTo(email);
      const code = codeIn(mail);
      expect(mail.subject).toBe(`[${NAME}] sign-up code ${code}`);
      expect(mail.text.trim()).toBe(`Hello ${email}, your sign-up code is ${code}, valid 4 min.`);
      expect(mail.html).toContain(`<h1>Acme &lt;Labs&gt; &amp; &quot;Co&quot;</h1><p class="code">${code}</p><p>${email}</p>`);
      expect(mail.html).not.toContain("<Labs>");
      expect(mail.text).not.toContain("Welcome to");
      expect(mail.html).not.toContain("Back again");

      // Once the address is verified, the same call picks the login template.
      const verified = await stytch("/v1/otps/authenticate", auth, { method_id: res.body.email_id, code });
      expect(verified.status, JSON.stringify(verified.body)).toBe(200);
      const again = await loginOrCreate(auth, { email, signup_template_id: signup.template_id, login_template_id: login.template_id });
      expect(again.status).toBe(200);
      const second = await mailTo(email, 2);
      expect(second.subject).toBe(`${NAME} login ${codeIn(second)}`);
      expect(second.text.trim()).toBe(`Back again? ${codeIn(second)}`);
      expect(second.html).toContain(`<div id="login">${codeIn(second)}</div>`);
    });

    it("without template ids: the built-in copy", async () => {
      const email = freshEmail("builtin");
      expect((await loginOrCreate(auth, { email })).status).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`Your ${NAME} code: ${codeIn(mail)}`);
    });

    it("signup_template_id and login_template_id may name the template by its name, as the README's walkthrough does", async () => {
      const email = freshEmail("byname");
      const res = await loginOrCreate(auth, { email, expiration_minutes: 4, signup_template_id: "welcome", login_template_id: "returning" });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`[${NAME}] sign-up code ${codeIn(mail)}`);
    });

    it.each([
      ["login_template_id", "a sign-up template", () => `names a signup template, not a login one: "${signup.template_id}"; its login templates are ${login.template_id} ("returning")`],
      ["signup_template_id", "a login template", () => `names a login template, not a signup one: "${login.template_id}"; its signup templates are ${signup.template_id} ("welcome")`],
      ["signup_template_id", "an unknown id", () => `names no signup template of this project by id or name: "template-000000000000000000000000"; its signup templates are ${signup.template_id} ("welcome")`],
      ["signup_template_id", "an unknown name", () => `names no signup template of this project by id or name: "welcom"; its signup templates are ${signup.template_id} ("welcome")`],
      ["login_template_id", "another project's template", () => `names no login template of this project by id or name: "%ID%"; its login templates are ${login.template_id} ("returning")`],
    ] as const)("%s naming %s: 400 bad_request naming the field and the ids that exist, nothing stored", async (field, what, description) => {
      let templateId: string;
      if (what === "a sign-up template") templateId = signup.template_id;
      else if (what === "a login template") templateId = login.template_id;
      else if (what === "an unknown id") templateId = "template-000000000000000000000000";
      else if (what === "an unknown name") templateId = "welcom";
      else {
        const other = await restDriver.call("setTemplate", {
          project_id: env().project.projectId,
          kind: "TEMPLATE_KIND_LOGIN",
          name: "foreign",
          subject: "s",
          text_body: "{{code}}",
          html_body: "{{code}}",
        });
        templateId = other.template.template_id;
      }
      const email = freshEmail("badtemplate");
      const res = await loginOrCreate(auth, { email, [field]: templateId });
      expect(res.status).toBe(400);
      expect(res.body.error_type).toBe("bad_request");
      expect(res.body.error_message).toBe(`${field} ${description().replace("%ID%", templateId)}`);
      // Refused before anything was stored: the address has no user.
      const addresses = (await restDriver.call("listUsers", { project_id: projectId })).users.flatMap((u: Json) => u.emails);
      expect(addresses).not.toContain(email);
    });

    it("locale de on a Stytch send: 400 naming the allowed locales", async () => {
      const res = await loginOrCreate(auth, { email: freshEmail("german"), locale: "de" });
      expect(res.status).toBe(400);
      expect(res.body.error_type).toBe("bad_request");
      expect(res.body.error_message).toBe("locale must be one of: en, es, pt-br, fr");
    });

    it("locale es on a Stytch send: the Spanish copy", async () => {
      const email = freshEmail("spanish");
      expect((await loginOrCreate(auth, { email, locale: "es", expiration_minutes: 3 })).status).toBe(200);
      const mail = await mailTo(email);
      expect(mail.subject).toBe(`Tu código de ${NAME}: ${codeIn(mail)}`);
      expect(mail.text).toContain("El código caduca en 3 minutos.");
    });
  });

  describe("header injection through tenant names", () => {
    function expectSafeHeaders(mail: ReceivedMail, recipient: string): void {
      const headers = headersOf(mail.raw);
      const count = (name: string) => headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).length;
      expect(count("From")).toBe(1);
      expect(count("Subject")).toBe(1);
      expect(count("To")).toBe(1);
      expect(count("Bcc")).toBe(0);
      expect(count("Cc")).toBe(0);
      expect(headerValues(mail.raw, "To")).toEqual([recipient]);
      // The envelope too: the mail went to the customer alone.
      expect(mail.to).toBe(recipient);
      // Headers are 7-bit: anything else is in encoded words.
      const section = mail.raw.slice(0, mail.raw.search(/\r?\n\r?\n/));
      expect(section).toMatch(/^[\x20-\x7e\r\n\t]*$/);
    }

    it("a non-ASCII business name arrives as RFC 2047 encoded words in From and Subject", async () => {
      const id = freshBusinessId();
      const name = "Café Ünïcode";
      const put = await rest("PUT", `/admin/v1/businesses/${id}`, { body: { name } });
      expect(put.status, put.text).toBe(200);
      const customer = freshEmail("unicode");
      expect((await rest("POST", "/admin/v1/users", { body: { business_id: id, email: customer } })).status).toBe(200);
      await legacySend(customer, id);
      const mail = await mailTo(customer);
      expectSafeHeaders(mail, customer);
      const [from] = headerValues(mail.raw, "From");
      const [subject] = headerValues(mail.raw, "Subject");
      expect(from).toMatch(/=\?utf-8\?[BQ]\?/i);
      expect(subject).toMatch(/=\?utf-8\?[BQ]\?/i);
      expect(decodeWords(from!)).toBe(`${name} <no-reply@otp.localhost>`);
      expect(decodeWords(subject!)).toBe(`Your ${name} code: ${codeIn(mail)}`);
      expect(mail.subject).toBe(`Your ${name} code: ${codeIn(mail)}`);
    });

    it("a CR/LF name already in the database (not through the API) still gives one From, one Subject, no Bcc", async () => {
      const id = freshBusinessId();
      await new PgAdminStore(env().app.db).upsertBusiness(String(id), "Café\r\nBcc: evil@x.com", { senderName: "Desk\r\nBcc: evil2@x.com" });
      const customer = freshEmail("crlf");
      await addTestUser(env().app.db, (await env().tenants.business(String(id)))!.id, customer);
      await legacySend(customer, id);
      const mail = await mailTo(customer);
      expectSafeHeaders(mail, customer);
      expect(decodeWords(headerValues(mail.raw, "Subject")[0]!)).not.toMatch(/[\r\n]/);
      expect(mail.subject).toContain("Bcc: evil@x.com");
      expect(env().smtp.mails.some((m) => /evil2?@x\.com/.test(m.to))).toBe(false);
    });
  });
});

describe("business changes reach the next send at once", () => {
  it("a new default locale is used by the very next legacy mail of that business", async () => {
    const id = 880_000 + Math.floor(Math.random() * 10_000);
    const put = (locale: string) =>
      fetch(`${env().url}/admin/v1/businesses/${id}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Locale Studio", branding: { default_locale: locale } }),
      });
    expect((await put("en")).status).toBe(200);
    const customer = `locale-${id}@example.com`;
    const added = await fetch(`${env().url}/admin/v1/users`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ business_id: id, email: customer }),
    });
    expect(added.status).toBe(200);
    const send = () => fetch(`${env().url}/api/sys/users/sendOtp?email=${encodeURIComponent(customer)}&businessId=${id}`);
    const mailsTo = () => env().smtp.mails.filter((m) => m.to === customer);
    expect((await send()).status).toBe(200);
    await expect.poll(() => mailsTo().length).toBe(1);
    expect(mailsTo()[0]!.subject).toMatch(/^Your Locale Studio code/);
    expect((await put("fr")).status).toBe(200);
    expect((await send()).status).toBe(200);
    await expect.poll(() => mailsTo().length).toBe(2);
    expect(mailsTo()[1]!.subject).toMatch(/^Votre code Locale Studio/);
  });
});
