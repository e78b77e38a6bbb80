// The languages the passcode mail is written in. The domain owns the list:
// validation accepts exactly these, and mail renders each of them.

export const LOCALES = ["en", "es", "pt-br", "fr"] as const;
export type Locale = (typeof LOCALES)[number];

export function isLocale(value: string): value is Locale {
  return (LOCALES as readonly string[]).includes(value);
}
