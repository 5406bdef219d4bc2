// `--store URL` parsing: file and PostgreSQL URLs, clear refusals, and no password shown.

import assert from "node:assert/strict";
import { parseStoreUrl, redactUrl, StoreUrlError } from "../../store/mod.ts";
import { parseConfig, UsageError } from "../../server/config.ts";

Deno.test("file: URLs name a path, relative or absolute", () => {
  assert.deepEqual(parseStoreUrl("file:events.log"), {
    kind: "file",
    path: "events.log",
    description: "file:events.log",
  });
  for (const text of ["file:/var/lib/chat/events.log", "file:///var/lib/chat/events.log"]) {
    assert.deepEqual(parseStoreUrl(text), {
      kind: "file",
      path: "/var/lib/chat/events.log",
      description: "file:/var/lib/chat/events.log",
    });
  }
  assert.throws(() => parseStoreUrl("file:"), StoreUrlError);
  assert.throws(() => parseStoreUrl("file://host/x"), /names a host/);
});

Deno.test("postgres URLs keep the driver's part, take our schema, and describe without password", () => {
  const url = parseStoreUrl(
    "postgresql://chat:p%40ss@db1:5432,db2:5433/chat?schema=prod_1&sslmode=verify-full",
  );
  assert.equal(url.kind, "postgres");
  if (url.kind !== "postgres") return;
  assert.equal(url.schema, "prod_1");
  assert.equal(
    url.connection,
    "postgresql://chat:p%40ss@db1:5432,db2:5433/chat?sslmode=verify-full",
  );
  assert.equal(url.description, "postgres://chat@db1:5432,db2:5433/chat?schema=prod_1");
  const v6 = parseStoreUrl("postgres://u@[::1]:5433,db2/chat");
  assert.deepEqual(v6.kind === "postgres" && v6.hosts, [{ host: "::1", port: 5433 }, {
    host: "db2",
  }]);
  const plain = parseStoreUrl("postgres://localhost/chat");
  assert.equal(plain.kind === "postgres" && plain.schema, "hybrid");
  assert.equal(plain.kind === "postgres" && plain.connection, "postgres://localhost/chat");
});

Deno.test("bad store URLs are refused with a reason and never the password", () => {
  const password = "Sup3r-secret";
  const cases: [string, RegExp][] = [
    [`postgres://u:${password}@h:99999/db`, /port must be an integer/],
    [`postgres://u:${password}@h/db?schema=Bad-Name`, /schema must match/],
    [`postgres://u:${password}@h/db?sslmode=sometimes`, /sslmode must be one of/],
    [`postgres://u:${password}@h/db?statement_timeout=0`, /unknown parameter/],
    [`postgres://u:${password}@h/db%zz`, /bad %-escape/],
    [`postgres://u:${password}%zz@h/db`, /the password has a bad %-escape/],
    [`mysql://u:${password}@h/db`, /unknown store scheme "mysql:"/],
    ["events.log", /not a store URL: write file:PATH/],
  ];
  for (const [text, reason] of cases) {
    assert.throws(() => parseStoreUrl(text), (e: unknown) => {
      assert.ok(e instanceof StoreUrlError, text);
      assert.match(e.message, reason);
      assert.doesNotMatch(e.message, new RegExp(password));
      return true;
    });
  }
});

Deno.test("redactUrl hides a password even when it holds unescaped / ? @", () => {
  assert.equal(redactUrl("postgres://u:pa/ss?@x@h/db"), "postgres://u:***@h/db");
  assert.equal(redactUrl("postgres://u@h/db"), "postgres://u@h/db");
  assert.equal(redactUrl("file:a:b@c"), "file:a:b@c");
});

Deno.test("the server takes --store, HYBRID_STORE, and --log as file:PATH", () => {
  const config = (args: string[], env: Record<string, string> = {}) => {
    const c = parseConfig(args, env);
    assert.ok(typeof c === "object");
    return c;
  };
  assert.deepEqual(config([]).store, parseStoreUrl("file:./events.log"));
  assert.deepEqual(config(["--log", "a/b.log"]).store, parseStoreUrl("file:a/b.log"));
  assert.equal(config(["--log", "a/b.log"]).key, "a/server_key.pem");
  const pg = config(["--store", "postgres://h/db"]);
  assert.equal(pg.store.kind, "postgres");
  assert.equal(pg.key, "server_key.pem");
  assert.equal(config([], { HYBRID_STORE: "postgres://h/db" }).store.kind, "postgres");
  assert.equal(config(["--log", "x.log"], { HYBRID_STORE: "postgres://h/db" }).store.kind, "file");
  assert.throws(() => parseConfig(["--store", "file:a", "--log", "b"], {}), /not both/);
  assert.throws(
    () => parseConfig(["--store", "postgres://h/db", "--fsync", "off"], {}),
    UsageError,
  );
  assert.throws(() => parseConfig(["--store", "postgres://h/db", "--repair"], {}), UsageError);
  assert.throws(
    () => parseConfig(["--store", "postgres://u:hunter22@h/db?x=1"], {}),
    (e: unknown) => e instanceof UsageError && !e.message.includes("hunter22"),
  );
});
