// docs/PROTOCOL.md cannot drift from protocol/messages.ts: every request, push and error code its
// tables name exists in the code, and every code the code knows is in its tables.
import assert from "node:assert/strict";
import { BYE_REASONS, ERROR_CODES, REQUEST_CODES } from "../../protocol/messages.ts";

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
