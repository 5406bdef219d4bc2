// docs/PROTOCOL.md cannot drift from the code: every request, push and error code its tables name
// exists in protocol/messages.ts, and every code the code knows is in its tables; §5's tables hold
// every limit of protocol/limits.ts and of the server's --limit, each with its value.
import assert from "node:assert/strict";
import { BYE_REASONS, ERROR_CODES, REQUEST_CODES } from "../../protocol/messages.ts";
import * as LIMITS from "../../protocol/limits.ts";
import { DEFAULT_LIMITS } from "../../server/config.ts";

const doc = await Deno.readTextFile(new URL("../../docs/PROTOCOL.md", import.meta.url));

/** The text of the section that starts at `heading`, up to the next heading of its level or above. */
function section(heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `docs/PROTOCOL.md has no heading "${heading}"`);
  const level = heading.match(/^#+/)![0].length;
  const rest = doc.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`\\n#{1,${level}} `));
  return next < 0 ? rest : rest.slice(0, next);
}

/** The codes of the bold `**\`XYZ\` — …**` entries of a section. */
function boldCodes(text: string): string[] {
  return [...text.matchAll(/^\*\*`([A-Z]{3})` —/gm)].map((m) => m[1]!);
}

/** The first column's codes of a section's tables. */
function tableCodes(text: string): string[] {
  return [...text.matchAll(/^\| `([a-z_]+)` +\|/gm)].map((m) => m[1]!);
}

const sorted = (xs: readonly string[]) => [...new Set(xs)].sort();

Deno.test("the requests of docs/PROTOCOL.md §4.1 are exactly REQUEST_CODES", () => {
  assert.deepEqual(sorted(boldCodes(section("### 4.1 Requests"))), sorted(REQUEST_CODES));
});

Deno.test("the pushes and the receipt of docs/PROTOCOL.md §4.2 are DLV, BYE and DAK", () => {
  assert.deepEqual(sorted(boldCodes(section("### 4.2 Pushes and the delivery acknowledgement"))), [
    "BYE",
    "DAK",
    "DLV",
  ]);
});

Deno.test("the error codes of docs/PROTOCOL.md B.2 are exactly ERROR_CODES", () => {
  assert.deepEqual(
    sorted(tableCodes(section("### B.2 Application errors (`ERR` record)"))),
    sorted(
      ERROR_CODES,
    ),
  );
});

Deno.test("the BYE reasons of docs/PROTOCOL.md §4.2 are exactly BYE_REASONS", () => {
  const row = section("### 4.2 Pushes and the delivery acknowledgement").match(
    /^\| `reason` \| string \| (.*) \|$/m,
  );
  assert.ok(row, "no reason row");
  assert.deepEqual(
    sorted([...row[1]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!)),
    sorted(BYE_REASONS),
  );
});

/** The rows of the first table after `caption` in `text`: first column (unquoted) → second. */
function tableAfter(text: string, caption: string): Map<string, string> {
  const start = text.indexOf(caption);
  assert.ok(start >= 0, `no "${caption}" in docs/PROTOCOL.md §5`);
  const rows = new Map<string, string>();
  let inTable = false;
  for (const line of text.slice(start).split("\n")) {
    const cells = line.match(/^\| `([^`]+)` +\| (.+?) +\|/);
    if (cells) {
      inTable = true;
      rows.set(cells[1]!, cells[2]!);
    } else if (inTable && !line.startsWith("|")) break;
  }
  return rows;
}

/** A number as the docs write it: "1 048 576", "2^32", "2^31 − 1". */
function docNumber(text: string): number {
  const m = text.replaceAll(" ", "").match(/^(\d+)(?:\^(\d+))?(?:−(\d+))?$/);
  assert.ok(m, `not a number: "${text}"`);
  const base = m[2] === undefined ? +m[1]! : (+m[1]!) ** +m[2];
  return base - (m[3] === undefined ? 0 : +m[3]);
}

const limitsSection = section("## 5. Limits and timeouts");

Deno.test("docs/PROTOCOL.md §5 lists every constant of protocol/limits.ts with its value", () => {
  const rows = tableAfter(limitsSection, "| Constant");
  assert.deepEqual(sorted([...rows.keys()]), sorted(Object.keys(LIMITS)));
  for (const [name, value] of Object.entries(LIMITS)) {
    const shown = rows.get(name)!;
    if (value instanceof RegExp) assert.equal(shown, `\`${value.source}\``, name);
    else assert.equal(docNumber(shown), value, name);
  }
});

Deno.test("docs/PROTOCOL.md §5 lists every server limit of --limit with its default", () => {
  const rows = tableAfter(limitsSection, "| Name");
  assert.deepEqual(sorted([...rows.keys()]), sorted(Object.keys(DEFAULT_LIMITS)));
  for (const [name, value] of Object.entries(DEFAULT_LIMITS)) {
    assert.equal(docNumber(rows.get(name)!), value, name);
  }
});
