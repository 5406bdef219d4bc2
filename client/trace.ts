// The educational trace (--trace, /trace on): the §2 handshake step by step, every §3 record, and
// each step of sealing and opening a §8 message, as plain data for --json and as aligned lines
// for people. Keys never appear, only short ids and fingerprints.
import { fingerprintOfKid, fromHex, type KexGroup, kexGroupByName, toHex } from "../crypto/mod.ts";
import type { HandshakeTrace } from "../protocol/handshake.ts";
import { OPEN_CHECKS, type OpenCheck, type SealedTrace } from "../protocol/sealed.ts";
import type { RecordTrace } from "../protocol/session.ts";
import { escapeControl } from "./escape.ts";
import type { Style } from "./style.ts";

/** Leading bytes of a key-exchange share (and of each part of a hybrid's) shown in the trace. */
export const SHARE_HEAD_BYTES = 8;

/** One part of a share (a hybrid's has two, §2.6): its name, size and leading bytes. */
export interface SharePartView {
  readonly name: string;
  readonly bytes: number;
  readonly head: string;
}

/** A handshake step as JSON-ready data (shares shortened to their size and leading bytes). */
export type HandshakeTraceView =
  | {
    readonly step: "client_hello" | "server_hello";
    readonly group: string;
    readonly random: string;
    readonly share_bytes: number;
    readonly share_head: string;
    readonly share_parts: readonly SharePartView[];
    readonly bytes: number;
  }
  | { readonly step: "shared_secret"; readonly group: string; readonly bytes: number }
  | {
    readonly step: "server_key";
    readonly fingerprint: string;
    readonly bits: number;
    readonly key_bytes: number;
  }
  | { readonly step: "signature"; readonly verified: boolean; readonly bytes: number }
  | { readonly step: "transcript_hash"; readonly hex: string }
  | {
    readonly step: "keys";
    readonly c2s_enc: string;
    readonly c2s_mac: string;
    readonly s2c_enc: string;
    readonly s2c_mac: string;
  };

/** A record as JSON-ready data. */
export interface RecordTraceView {
  readonly direction: "send" | "receive";
  readonly seq: number;
  readonly code: string;
  readonly plaintext_bytes: number;
  readonly iv: string;
  readonly ciphertext_bytes: number;
  readonly mac_bytes: number;
  readonly record_bytes: number;
}

/** The parts of `share` as the group lays them out (§2.6), or the whole share as one part. */
function shareParts(
  group: KexGroup | undefined,
  side: "client" | "server",
  share: Uint8Array,
): SharePartView[] {
  const layout = group === undefined
    ? []
    : side === "client"
    ? group.clientShare
    : group.serverShare;
  const parts: SharePartView[] = [];
  let at = 0;
  for (const { name, bytes } of layout) {
    if (at + bytes > share.length) break;
    parts.push({ name, bytes, head: toHex(share.subarray(at, at + SHARE_HEAD_BYTES)) });
    at += bytes;
  }
  return at === share.length ? parts : [];
}

/** The view of one handshake trace event. */
export function handshakeView(event: HandshakeTrace): HandshakeTraceView {
  switch (event.step) {
    case "client_hello":
    case "server_hello":
      return {
        step: event.step,
        group: event.group,
        random: event.random,
        share_bytes: event.share.length,
        share_head: toHex(event.share.subarray(0, SHARE_HEAD_BYTES)),
        share_parts: shareParts(
          kexGroupByName(event.group),
          event.step === "client_hello" ? "client" : "server",
          event.share,
        ),
        bytes: event.bytes,
      };
    case "shared_secret":
      return { step: event.step, group: event.group, bytes: event.bytes };
    case "server_key":
      return {
        step: event.step,
        fingerprint: event.fingerprint,
        bits: event.bits,
        key_bytes: event.keyBytes,
      };
    case "signature":
      return { step: event.step, verified: event.verified, bytes: event.bytes };
    case "transcript_hash":
      return { step: event.step, hex: event.hex };
    case "keys":
      return {
        step: event.step,
        c2s_enc: event.ids.c2sEnc,
        c2s_mac: event.ids.c2sMac,
        s2c_enc: event.ids.s2cEnc,
        s2c_mac: event.ids.s2cMac,
      };
    default:
      return unreachable(event);
  }
}

/** The view of one record trace event. */
export function recordView(event: RecordTrace): RecordTraceView {
  return {
    direction: event.direction,
    seq: event.seq,
    code: event.code,
    plaintext_bytes: event.plaintextBytes,
    iv: event.iv,
    ciphertext_bytes: event.ciphertextBytes,
    mac_bytes: event.macBytes,
    record_bytes: event.recordBytes,
  };
}

const LABEL_WIDTH = 19;

/** Hex bytes spaced in pairs, for the leading bytes of a share. */
function spaced(hex: string): string {
  return hex.replace(/(..)(?!$)/g, "$1 ");
}

/** What each share is, in the words of §2.1 and §2.6, per group kind. */
const CLIENT_SHARE_TEXT = {
  ffdhe: "= 2^x mod p, x fresh",
  x25519: "= X25519(a, 9): a fresh, 9 is the base point",
  x25519mlkem768: "= ek || X25519(a, 9)",
} as const;
const SERVER_SHARE_TEXT = {
  ffdhe: "= 2^y mod p, y fresh",
  x25519: "= X25519(b, 9), b fresh",
  x25519mlkem768: "= ct || X25519(b, 9)",
} as const;
/** The hybrid's parts, explained once each (§2.6). */
const HYBRID_PART_TEXT: Record<string, string> = {
  "ML-KEM-768 ek": "ML-KEM-768 encapsulation key (fresh; its dk stays here)",
  "ML-KEM-768 ciphertext": "= ML-KEM.Encaps(ek): a fresh K that only dk opens",
  "X25519(a, 9)": "a fresh, as in x25519",
  "X25519(b, 9)": "b fresh, as in x25519",
};

/**
 * Lines for one handshake step, each starting with the trace gutter; `server` (host:port, escaped)
 * heads the first, so that a trace across several servers says which one each handshake is with.
 */
export function formatHandshakeTrace(
  view: HandshakeTraceView,
  style: Style,
  server: string,
): string[] {
  const gutter = style.dim("│ ");
  const row = (mark: string, label: string, text: string) =>
    `${gutter}${mark} ${style.bold(label.padEnd(LABEL_WIDTH))}${text}`;
  const detail = (label: string, text: string) =>
    `${gutter}    ${style.dim(label.padEnd(LABEL_WIDTH - 2))}${text}`;
  const ok = style.green("✓");
  switch (view.step) {
    case "client_hello": {
      const group = kexGroupByName(view.group);
      const id = group ? ` (0x${group.id.toString(16).padStart(4, "0")})` : "";
      return [
        `${style.dim("┌─")} ${style.bold(`handshake with ${server}`)} ${style.dim("HSP/1 §2")}`,
        row(
          style.cyan("→"),
          "ClientHello",
          `${view.bytes} bytes · group ${group?.title ?? view.group}${id}`,
        ),
        detail("client_random", `${view.random.slice(0, 16)}… (32 bytes)`),
        ...shareLines("client_share", view, group, CLIENT_SHARE_TEXT, detail),
      ];
    }
    case "server_hello": {
      const group = kexGroupByName(view.group);
      return [
        row(
          style.cyan("←"),
          "ServerHello",
          `${view.bytes} bytes · group ${group?.title ?? view.group} echoed`,
        ),
        detail("server_random", `${view.random.slice(0, 16)}… (32 bytes)`),
        ...shareLines("server_share", view, group, SERVER_SHARE_TEXT, detail),
      ];
    }
    case "shared_secret":
      return secretLines(view.bytes, kexGroupByName(view.group), ok, row, detail);
    case "server_key":
      return [
        row(ok, "server key", `RSA-${view.bits} · ${view.key_bytes} bytes DER`),
        detail("fingerprint", view.fingerprint),
      ];
    case "signature":
      return [
        row(
          view.verified ? ok : style.red("✗"),
          "signature",
          `RSA-PSS/SHA-256 · ${view.bytes} bytes · ${
            view.verified ? style.green("verified") : style.red("INVALID")
          } over the transcript`,
        ),
      ];
    case "transcript_hash":
      return [row(" ", "transcript hash", `SHA-256 ${view.hex.slice(0, 32)}…`)];
    case "keys":
      return [
        row(ok, "keys (HKDF)", `4 × 32 bytes; short ids = SHA-256(key)[0..4], never the keys`),
        detail("client → server", `enc ${view.c2s_enc}  mac ${view.c2s_mac}`),
        detail("server → client", `enc ${view.s2c_enc}  mac ${view.s2c_mac}`),
        `${style.dim("└─")} ${style.dim("records: AES-256-CBC + HMAC-SHA-256, encrypt-then-MAC")}`,
      ];
    default:
      return unreachable(view);
  }
}

type Line = (label: string, text: string) => string;

/** The share's line, then one line per part for the hybrid (ek or ct, then the X25519 part). */
function shareLines(
  label: string,
  view: { share_bytes: number; share_head: string; share_parts: readonly SharePartView[] },
  group: KexGroup | undefined,
  text: Record<KexGroup["kind"], string>,
  detail: Line,
): string[] {
  const what = group ? `  ${text[group.kind]}` : "";
  if (group?.kind !== "x25519mlkem768" || view.share_parts.length === 0) {
    return [detail(label, `${view.share_bytes} bytes  ${spaced(view.share_head)} …${what}`)];
  }
  return [
    detail(label, `${view.share_bytes} bytes${what}`),
    ...view.share_parts.map((p) =>
      detail(
        `  ${p.name.startsWith("X25519") ? "X25519 part" : p.name.slice("ML-KEM-768 ".length)}`,
        `${p.bytes} bytes  ${spaced(p.head)} …  ${HYBRID_PART_TEXT[p.name] ?? p.name}`,
      )
    ),
  ];
}

/** How Z came about in this group, and for the hybrid why it takes two secrets (§2.6). */
function secretLines(
  bytes: number,
  group: KexGroup | undefined,
  ok: string,
  row: (mark: string, label: string, text: string) => string,
  detail: Line,
): string[] {
  const label = "shared secret Z";
  switch (group?.kind) {
    case undefined:
      return [row(ok, label, `${bytes} bytes (never shown)`)];
    case "ffdhe":
      return [row(ok, label, `${bytes} bytes = server_share^x mod p (never shown)`)];
    case "x25519":
      return [row(ok, label, `${bytes} bytes = X25519(a, server_share) (never shown)`)];
    case "x25519mlkem768":
      return [
        row(ok, label, `${bytes} bytes = K || X25519 secret (never shown)`),
        detail("  K", "32 bytes = ML-KEM.Decaps(dk, ct): the server's K, post-quantum"),
        detail("  X25519 secret", "32 bytes = X25519(a, X25519(b, 9)): classical"),
        detail(
          "why both",
          "Z stays secret while either holds: X25519 is long studied but falls to a quantum",
        ),
        detail(
          "",
          "computer; ML-KEM resists one but is young. An eavesdropper recording today must",
        ),
        detail("", "break both to read this session later."),
      ];
    default:
      return unreachable(group);
  }
}

/**
 * One line per record: direction, sequence number (§3: never sent, both sides count), code, and
 * the parts of the record — sealing turns the plaintext into IV + ciphertext + MAC, opening the
 * other way round.
 */
export function formatRecordTrace(view: RecordTraceView, style: Style): string {
  const sending = view.direction === "send";
  const arrow = sending ? style.cyan("→") : style.yellow("←");
  const seal = sending ? "⇒" : "⇐";
  const code = style.bold(escapeControl(view.code, style.escape));
  return `  ${arrow} ${style.dim(`seq ${view.seq}`.padEnd(7))} ${code} ` +
    `${String(view.plaintext_bytes).padStart(5)} B plaintext ${seal} ` +
    `IV ${style.dim(view.iv)} + ${view.ciphertext_bytes} B ciphertext + ${view.mac_bytes} B MAC` +
    ` = ${view.record_bytes} B`;
}

function unreachable(value: never): never {
  throw new TypeError(`unhandled trace ${JSON.stringify(value)}`);
}

/** A step of sealing (§8.3) or a check of opening (§8.5), as JSON-ready data. */
export type SealedTraceView =
  & {
    readonly direction: "seal" | "open";
    /** The other user: the recipient when sealing, the sender when opening. */
    readonly peer: string;
  }
  & (
    | { readonly step: "message_key"; readonly bytes: number }
    | {
      readonly step: "wrap";
      readonly recipient_fingerprint: string;
      readonly bits: number;
      readonly wrapped_bytes: number;
    }
    | {
      readonly step: "encrypt";
      readonly inner_bytes: number;
      readonly iv: string;
      readonly ct_bytes: number;
    }
    | { readonly step: "mac"; readonly body_bytes: number; readonly tag_head: string }
    | {
      readonly step: "sign";
      readonly sender_fingerprint: string;
      readonly bits: number;
      readonly signed_bytes: number;
      readonly sig_bytes: number;
    }
    | { readonly step: "sealed"; readonly envelope_bytes: number; readonly chars: number }
    | {
      readonly step: "check";
      readonly check: OpenCheck;
      readonly ok: boolean;
      readonly detail: string;
    }
  );

/** The view of one sealing or opening step. */
export function sealedView(
  direction: "seal" | "open",
  peer: string,
  event: SealedTrace,
): SealedTraceView {
  const head = { direction, peer };
  switch (event.step) {
    case "message_key":
      return { ...head, step: event.step, bytes: event.bytes };
    case "wrap":
      return {
        ...head,
        step: event.step,
        recipient_fingerprint: fingerprintOfKid(fromHex(event.recipientKid)),
        bits: event.bits,
        wrapped_bytes: event.wrappedBytes,
      };
    case "encrypt":
      return {
        ...head,
        step: event.step,
        inner_bytes: event.innerBytes,
        iv: event.iv,
        ct_bytes: event.ctBytes,
      };
    case "mac":
      return { ...head, step: event.step, body_bytes: event.bodyBytes, tag_head: event.tagHead };
    case "sign":
      return {
        ...head,
        step: event.step,
        sender_fingerprint: fingerprintOfKid(fromHex(event.senderKid)),
        bits: event.bits,
        signed_bytes: event.signedBytes,
        sig_bytes: event.sigBytes,
      };
    case "sealed":
      return { ...head, step: event.step, envelope_bytes: event.envelopeBytes, chars: event.chars };
    case "check":
      return { ...head, step: event.step, check: event.check, ok: event.ok, detail: event.detail };
    default:
      return unreachable(event);
  }
}

/** What each check of §8.5 protects against, said once beside its result. */
const CHECK_WHY: Readonly<Record<OpenCheck, string>> = {
  layout: "the envelope's fields and lengths, exactly",
  recipient_key: "sealed to a key of yours (current or kept)",
  sender_key: "a key the sender published, as pinned here",
  signature: "the sender signed it, for you: no re-attribution, no re-routing",
  unwrap: "only your private key opens the message key",
  tag: "the body is as the sender made it",
  inner: 'AES-256-CBC back to {"text": …}',
  replay: "not an old envelope delivered again",
};

/**
 * Lines for one step of sealing or opening, in the handshake trace's style: what each step
 * computes and what it protects, with sizes and public values only (never K or the text).
 */
export function formatSealedTrace(view: SealedTraceView, style: Style): string[] {
  const gutter = style.dim("│ ");
  const ok = style.green("✓");
  const row = (mark: string, label: string, text: string) =>
    `${gutter}${mark} ${style.bold(label.padEnd(LABEL_WIDTH))}${text}`;
  const detail = (text: string) => `${gutter}    ${" ".repeat(LABEL_WIDTH - 2)}${style.dim(text)}`;
  const peer = escapeControl(view.peer, style.escape);
  switch (view.step) {
    case "message_key":
      return [
        `${style.dim("┌─")} ${style.bold(`sealing for ${peer}`)} ${style.dim("HSP/1 §8.3")}`,
        row(ok, "message key K", `${view.bytes} fresh random bytes, for this message only`),
        detail("K = enc_key (AES-256) || mac_key (HMAC-SHA-256); never shown, wiped after use"),
      ];
    case "wrap":
      return [
        row(
          ok,
          "key wrap",
          `RSA-OAEP-SHA-256(${peer}'s RSA-${view.bits} key, K) → ${view.wrapped_bytes} bytes`,
        ),
        detail(`to ${view.recipient_fingerprint}: only ${peer}'s private key recovers K`),
      ];
    case "encrypt":
      return [
        row(
          ok,
          "AES-256-CBC",
          `{"text": …} ${view.inner_bytes} bytes, padded → ${view.ct_bytes} bytes of ciphertext`,
        ),
        detail(`under enc_key, IV ${view.iv.slice(0, 16)}… (16 fresh bytes)`),
      ];
    case "mac":
      return [
        row(ok, "HMAC-SHA-256", `tag = HMAC(mac_key, body) = ${view.tag_head}…`),
        detail(`body: "HSE" 1 kids wrapped IV ct, ${view.body_bytes} bytes`),
      ];
    case "sign":
      return [
        row(
          ok,
          "signature",
          `RSA-PSS-SHA-256 by your RSA-${view.bits} key → ${view.sig_bytes} bytes`,
        ),
        detail(
          `over "HSP/1 sealed message", your name, ${peer}, body and tag (${view.signed_bytes} ` +
            "bytes)",
        ),
      ];
    case "sealed":
      return [
        `${style.dim("└─")} ${
          style.dim(
            `envelope ${view.envelope_bytes} bytes = ${view.chars} base64 characters: the ` +
              "server carries it, cannot read or forge it",
          )
        }`,
      ];
    case "check": {
      const number = OPEN_CHECKS.indexOf(view.check) + 1;
      const lines: string[] = [];
      if (view.check === "layout") {
        lines.push(
          `${style.dim("┌─")} ${style.bold(`opening from ${peer}`)} ${
            style.dim("HSP/1 §8.5, each check in turn")
          }`,
        );
      }
      const text = escapeControl(view.detail, style.escape);
      lines.push(
        row(
          view.ok ? ok : style.red("✗"),
          `${number} ${view.check}`,
          view.ok ? text : style.red(text),
        ),
        detail(CHECK_WHY[view.check]),
      );
      if (!view.ok) {
        lines.push(
          `${style.dim("└─")} ${style.red(`refused at ${view.check}: not shown as text`)}`,
        );
      } else if (view.check === "replay") {
        lines.push(`${style.dim("└─")} ${style.dim("opened")}`);
      }
      return lines;
    }
    default:
      return unreachable(view);
  }
}
