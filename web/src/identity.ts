// Who agui-server says the signed-in user is: its `GET /whoami` answer, parsed with zod (the
// server's JSON is input like any other: `name` and `email` are null when the token has none).
import { z } from "zod";

/** agui-server's `GET /whoami` (`Principal::public_json`). */
export const WhoAmISchema = z.object({
  issuer: z.string().min(1),
  subject: z.string().min(1),
  name: z.string().nullish(),
  email: z.string().nullish(),
  roles: z.array(z.string()),
  scopes: z.array(z.string()),
});

/** The identity agui-server verified. */
export type WhoAmI = z.infer<typeof WhoAmISchema>;

/** The outcome of asking `/whoami`: the identity, or an `HTTP <status>: <body>` failure. */
export type WhoAmIResult = { ok: true; who: WhoAmI } | { ok: false; status: number; message: string };

/**
 * Parses a `/whoami` answer. A 200 whose body is not an identity is a failure (status 502, as a
 * proxy would say), never an identity with missing fields.
 */
export function parseWhoAmI(status: number, text: string): WhoAmIResult {
  if (status !== 200) return { ok: false, status, message: `HTTP ${status}: ${text}` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, status: 502, message: "HTTP 502: /whoami did not answer JSON" };
  }
  const parsed = WhoAmISchema.safeParse(json);
  if (!parsed.success) return { ok: false, status: 502, message: `HTTP 502: unexpected /whoami answer (${parsed.error.issues[0]?.path.join(".") || "shape"})` };
  return { ok: true, who: parsed.data };
}
