// The README and docs/ name files and folders a reader will go and open: each must exist, and the
// README's layout table must list exactly the project's top-level folders.
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);
const pages = [
  "README.md",
  ...[...Deno.readDirSync(new URL("docs/", root))].map((e) => `docs/${e.name}`),
]
  .filter((p) => p.endsWith(".md"));

function exists(path: string): boolean {
  try {
    Deno.statSync(new URL(path, root));
    return true;
  } catch {
    return false;
  }
}

Deno.test("every project path the README and docs/ name in backticks exists", () => {
  const missing: string[] = [];
  for (const page of pages) {
    const text = Deno.readTextFileSync(new URL(page, root));
    // `folder/file.ext`, relative to the project root; commands and URLs are not paths.
    for (const [, path] of text.matchAll(/`((?:[a-z_]+\/)+[a-z0-9_.]+\.(?:ts|json|py|md|pem))`/g)) {
      if (!exists(path!)) missing.push(`${page}: ${path}`);
    }
  }
  assert.deepEqual(missing, []);
});

Deno.test("the README's layout table lists the folders that exist, and every folder of code", () => {
  const readme = Deno.readTextFileSync(new URL("README.md", root));
  const layout = readme.slice(readme.indexOf("\n## Layout\n"));
  const listed = [...layout.matchAll(/^\| `([a-z_]+)\/` +\|/gm)].map((m) => m[1]!);
  assert.deepEqual(listed.filter((folder) => !exists(`${folder}/`)), []);
  // A folder of data left by a local run is no part of the layout; a folder of code is.
  const code = [...Deno.readDirSync(root)]
    .filter((e) => e.isDirectory && !e.name.startsWith("."))
    .map((e) => e.name)
    .filter((folder) =>
      [...Deno.readDirSync(new URL(`${folder}/`, root))].some((f) => f.name.endsWith(".ts"))
    );
  assert.deepEqual(code.filter((folder) => !listed.includes(folder)), []);
});
