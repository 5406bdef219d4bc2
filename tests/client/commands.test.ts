// The command language: each command parses, each mistake gets a one-line usage hint, and Tab
// completes commands, usernames seen and pinned servers.
import assert from "node:assert/strict";
import {
  complete,
  mayHoldPassword,
  newPasswordProblem,
  parseLine,
  pasteProblem,
  secretLines,
} from "../../client/commands.ts";
import { parseHostPort } from "../../client/server_list.ts";

function command(line: string) {
  const parsed = parseLine(line);
  assert.ok(parsed.ok, `${line} parses (${parsed.ok ? "" : parsed.error})`);
  return parsed.command;
}

function hint(line: string): string {
  const parsed = parseLine(line);
  assert.ok(!parsed.ok, `${line} is refused`);
  assert.ok(!parsed.error.includes("\n"), "a hint is one line");
  return parsed.error;
}

Deno.test("parseLine() reads every command of the REPL", () => {
  assert.deepEqual(command("/connect"), { type: "connect" });
  assert.deepEqual(command("/connect chat.example"), {
    type: "connect",
    servers: [{ host: "chat.example" }],
  });
  assert.deepEqual(command("/connect 10.0.0.1:6000"), {
    type: "connect",
    servers: [{ host: "10.0.0.1", port: 6000 }],
  });
  assert.deepEqual(command("/connect a:1,[::1]"), {
    type: "connect",
    servers: [{ host: "a", port: 1 }, { host: "::1" }],
  });
  assert.deepEqual(command("/disconnect"), { type: "disconnect" });
  assert.deepEqual(command("/signup alice"), { type: "signup", user: "alice" });
  assert.deepEqual(command("/login"), { type: "login" });
  assert.deepEqual(command("  /LOGIN bob  "), { type: "login", user: "bob" });
  assert.deepEqual(command("/logout"), { type: "logout" });
  assert.deepEqual(command("/passwd"), { type: "passwd" });
  assert.deepEqual(command("/users"), { type: "users" });
  assert.deepEqual(command("/key"), { type: "key" });
  const key = "SHA256:" + "Ab+/".repeat(10) + "xyA";
  assert.deepEqual(command(`/accept-key ${key}`), { type: "accept-key", fingerprint: key });
  assert.deepEqual(command("/trace on"), { type: "trace", on: true });
  assert.deepEqual(command("/trace off"), { type: "trace", on: false });
  assert.deepEqual(command("/status"), { type: "status" });
  assert.deepEqual(command("/help"), { type: "help" });
  assert.deepEqual(command("/help /msg"), { type: "help", topic: "msg" });
  assert.deepEqual(command("/quit"), { type: "quit" });
  assert.deepEqual(command("/exit"), { type: "quit" });
  assert.deepEqual(command("   "), { type: "empty" });
});

Deno.test("parseLine() takes the text of /msg and @user as typed, inner spaces included", () => {
  assert.deepEqual(command("/msg bob hello  there"), {
    type: "msg",
    to: "bob",
    text: "hello  there",
  });
  assert.deepEqual(command("@bob two\nlines"), { type: "msg", to: "bob", text: "two\nlines" });
  assert.deepEqual(command("/msg bob two\nlines"), { type: "msg", to: "bob", text: "two\nlines" });
  assert.deepEqual(command("@carol.d-1 /not a command"), {
    type: "msg",
    to: "carol.d-1",
    text: "/not a command",
  });
});

Deno.test("parseLine() answers a wrong command or argument with a usage hint", () => {
  assert.equal(hint("/msg bob"), "usage: /msg USER TEXT");
  assert.equal(hint("/msg"), "usage: /msg USER TEXT");
  assert.equal(hint("@bob"), "usage: @USER TEXT");
  assert.equal(hint("/trace"), "usage: /trace on|off");
  assert.equal(hint("/trace maybe"), "usage: /trace on|off");
  assert.equal(hint("/users all"), "usage: /users");
  assert.equal(hint("/login a b"), "usage: /login USER");
  assert.match(hint("/login Alice"), /^"Alice" is not a username: usernames match /);
  assert.match(hint("/msg BOB hi"), /^"BOB" is not a username/);
  assert.match(hint("/connect host:0"), /^\/connect "host:0" is not host\[:port\] \(port 1-65535/);
  assert.match(hint("/connect a, b"), /^usage: \/connect \[host\[:port\]\[,…\]\] \(no blank/);
  assert.match(hint("/connect a,,b"), /^\/connect has an empty entry \(entry 2\)/);
  assert.match(hint("/help nothing"), /^usage: \/help \[command\]/);
  assert.equal(hint("/accept-key"), "usage: /accept-key SHA256:…");
  assert.match(hint("/accept-key SHA256:short"), /^"SHA256:short" is not a fingerprint/);
  assert.equal(
    hint("/lgoin"),
    "unknown command /lgoin (did you mean /login?); /help lists commands",
  );
  assert.equal(hint("/st"), "unknown command /st (did you mean /status?); /help lists commands");
  assert.equal(hint("/zzzzzz"), "unknown command /zzzzzz; /help lists commands");
  assert.match(hint("hello"), /^not a command: send with @USER TEXT or \/msg USER TEXT/);
  assert.match(hint("/users\n/quit"), /^a line break can only be inside a message's text/);
  assert.match(hint("hello\nworld"), /^a line break can only be inside a message's text/);
});

Deno.test("parseLine() refuses a message above 16384 UTF-8 bytes before sending it", () => {
  assert.ok(parseLine("/msg bob " + "é".repeat(8192)).ok, "16384 bytes is the limit");
  assert.equal(
    hint("/msg bob " + "é".repeat(8192) + "x"),
    "message is 16385 bytes, above the limit of 16384",
  );
});

Deno.test("parseHostPort() reads host, host:port and bracketed IPv6, refusing bad ports", () => {
  assert.deepEqual(parseHostPort("example.org"), { host: "example.org" });
  assert.deepEqual(parseHostPort("example.org:5002"), { host: "example.org", port: 5002 });
  assert.deepEqual(parseHostPort("[::1]:7"), { host: "::1", port: 7 });
  assert.deepEqual(parseHostPort("[fe80::1]"), { host: "fe80::1" });
  assert.equal(parseHostPort("host:65536"), undefined);
  assert.equal(parseHostPort("host:0"), undefined);
  assert.equal(parseHostPort("::1"), undefined, "an IPv6 literal needs brackets");
  assert.equal(parseHostPort("user@host"), undefined);
});

Deno.test("complete() offers commands, usernames seen, on|off and pinned servers", () => {
  const sources = { users: ["bob", "alice", "bea"], endpoints: ["127.0.0.1:5002", "chat:1"] };
  assert.deepEqual(complete("/lo", sources), [["/login ", "/logout "], "/lo"]);
  assert.deepEqual(complete("/msg b", sources), [["bea ", "bob "], "b"]);
  assert.deepEqual(complete("/login a", sources), [["alice "], "a"]);
  assert.deepEqual(complete("@bo", sources), [["@bob "], "@bo"]);
  assert.deepEqual(complete("/trace o", sources), [["off", "on"], "o"]);
  assert.deepEqual(complete("/connect 127", sources), [["127.0.0.1:5002"], "127"]);
  assert.deepEqual(complete("/help pa", sources), [["passwd"], "pa"]);
  assert.deepEqual(
    complete("/msg bob hel", sources),
    [[], "/msg bob hel"],
    "text is not completed",
  );
});

Deno.test("secretLines() counts the passwords a command reads, also when the line is malformed", () => {
  assert.equal(secretLines("/login alice", false), 1);
  assert.equal(secretLines("  /LOGIN Alice extra", false), 1);
  assert.equal(secretLines("/signup bob", false), 1);
  assert.equal(secretLines("/signup bob", true), 2, "asked twice at a terminal");
  assert.equal(secretLines("/passwd", false), 2);
  assert.equal(secretLines("/passwd", true), 3);
  assert.equal(secretLines("/logout", false), 0);
  assert.equal(secretLines("@bob /login", false), 0);
  // A typo of a password command is still followed by its password.
  assert.equal(secretLines("/lgoin alice", false), 1);
  assert.equal(secretLines("/sigup bob", true), 2);
  assert.equal(secretLines("/pass", true), 3);
  assert.equal(secretLines("/logot", false), 0, "a typo of /logout reads no password");
});

Deno.test("mayHoldPassword() finds a password typed on the command's own line, typos included", () => {
  for (
    const line of ["/login alice hunter2", "/SIGNUP bob pw pw", "/passwd old new", "/lgoin a b"]
  ) {
    assert.equal(mayHoldPassword(line), true, line);
  }
  for (const line of ["/login alice", "/signup", "/passwd", "/msg bob a b c", "@bob /login a b"]) {
    assert.equal(mayHoldPassword(line), false, line);
  }
});

Deno.test("newPasswordProblem() says what is wrong with a new password's size, in words", () => {
  assert.equal(newPasswordProblem("x"), "password is 1 byte, below the minimum of 8 bytes");
  assert.equal(newPasswordProblem("é"), "password is 2 bytes, below the minimum of 8 bytes");
  assert.equal(newPasswordProblem("12345678"), undefined);
  assert.equal(newPasswordProblem("x".repeat(1024)), undefined);
  assert.equal(
    newPasswordProblem("x".repeat(1025)),
    "password is 1025 bytes, above the maximum of 1024 bytes",
  );
});

Deno.test("pasteProblem() lets several pasted lines in only as one message's text", () => {
  assert.equal(pasteProblem("/users"), undefined, "one line is typed text like any other");
  assert.equal(pasteProblem("@bob first\nsecond"), undefined);
  assert.equal(pasteProblem("  /MSG bob first\nsecond"), undefined);
  assert.match(pasteProblem("/login alice\nhunter2\n")!, /^several lines can only be one/);
  assert.match(pasteProblem("@bob\nsecond")!, /^several lines/, "no text on the first line");
  assert.match(pasteProblem("hello\nworld")!, /^several lines/);
});
