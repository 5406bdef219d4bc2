// What the client keeps for sealed messages (§8): private keys encrypted with the password in a
// standard format (`openssl pkey` reads it), private file modes, contacts' pins, and the replay
// memory, each read back as a new process would.
import assert from "node:assert/strict";
import { createPrivateKey } from "node:crypto";
import { fromBase64, toHex } from "../../crypto/mod.ts";
import { Contacts } from "../../client/contacts.ts";
import { decryptKeyPem, encryptKeyPem, KEY_FILE_SCRYPT } from "../../client/key_file.ts";
import { Keyring } from "../../client/keyring.ts";
import { ReplayMemory } from "../../client/replay_memory.ts";
import { portableCrypto } from "../_engines.ts";
import { userTestKeyDer } from "../_vectors.ts";
import { tempDir } from "./_harness.ts";

const PASSWORD = "correct horse battery é";
const der = userTestKeyDer("alice");

const HAS_OPENSSL = (() => {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test("a key file opens with its password only, and holds the key unchanged", async () => {
  const pem = await encryptKeyPem(der, PASSWORD);
  assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);
  assert.equal(toHex(decryptKeyPem(pem, PASSWORD)!), toHex(der));
  // The password is taken in NFC, as the server takes it: "é" typed as e + U+0301 opens it.
  assert.ok(decryptKeyPem(pem, PASSWORD.normalize("NFD")) !== undefined);
  for (const wrong of ["", "correct horse battery e", PASSWORD + " ", PASSWORD.toUpperCase()]) {
    assert.equal(decryptKeyPem(pem, wrong), undefined, JSON.stringify(wrong));
  }
  // Fresh salt and IV each time; and an unencrypted PEM is never taken for a key file.
  assert.notEqual(await encryptKeyPem(der, PASSWORD), pem);
  const plain = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" })
    .export({ format: "pem", type: "pkcs8" }) as string;
  assert.equal(decryptKeyPem(plain, PASSWORD), undefined);
});

Deno.test({
  name: "openssl pkey reads a key file with the password, and not without it",
  ignore: !HAS_OPENSSL,
  fn: async () => {
    await using dir = await tempDir();
    const path = `${dir.path}/key.pem`;
    await Deno.writeTextFile(path, await encryptKeyPem(der, PASSWORD));
    const pkey = (pass: string) =>
      new Deno.Command("openssl", {
        args: ["pkey", "-in", path, "-passin", `pass:${pass}`],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const good = await pkey(PASSWORD);
    assert.ok(good.success, new TextDecoder().decode(good.stderr));
    const pem = new TextDecoder().decode(good.stdout);
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(toHex(fromBase64(pem.replace(/-----[A-Z ]+-----|\s/g, ""))), toHex(der));
    assert.equal((await pkey("wrong password")).success, false);
    const parsed = await new Deno.Command("openssl", {
      args: ["asn1parse", "-in", path],
      stdout: "piped",
    }).output();
    const structure = new TextDecoder().decode(parsed.stdout);
    assert.match(structure, /PBES2/);
    assert.match(structure, /scrypt/);
    assert.match(structure, /aes-256-cbc/);
    assert.match(structure, new RegExp(`INTEGER +:${(2 ** KEY_FILE_SCRYPT.logN).toString(16)}`));
  },
});

Deno.test("the keyring keeps each key in a 0600 file in a 0700 folder; a wrong password yields none", async () => {
  await using dir = await tempDir();
  const folder = `${dir.path}/accounts/server_1/alice`;
  const { keyring } = await Keyring.open(folder, PASSWORD, portableCrypto);
  const own = await keyring.add(portableCrypto.parsePrivateKey(der), PASSWORD);
  keyring.dispose();
  if (Deno.build.os !== "windows") {
    assert.equal((await Deno.stat(own.path)).mode! & 0o777, 0o600);
    assert.equal((await Deno.stat(folder)).mode! & 0o777, 0o700);
  }
  const text = await Deno.readTextFile(own.path);
  assert.ok(!text.includes("-----BEGIN PRIVATE KEY-----"), "not a plain PKCS#8 PEM");

  const wrong = await Keyring.open(folder, "not the password", portableCrypto);
  assert.equal(wrong.keyring.size, 0);
  assert.deepEqual(wrong.unreadable, [own.path]);

  // A password change encrypts the files again: the new password opens them, the old no more.
  const right = await Keyring.open(folder, PASSWORD, portableCrypto);
  assert.equal(right.keyring.byFingerprint(own.fingerprint)?.fingerprint, own.fingerprint);
  await right.keyring.writeNext("the new password");
  await right.keyring.commitNext();
  right.keyring.dispose();
  assert.equal((await Keyring.open(folder, PASSWORD, portableCrypto)).keyring.size, 0);
  assert.equal((await Keyring.open(folder, "the new password", portableCrypto)).keyring.size, 1);
  assert.deepEqual(await filesIn(folder), [own.path]);
});

const filesIn = async (folder: string) =>
  (await Array.fromAsync(Deno.readDir(folder))).map((e) => `${folder}/${e.name}`).sort();

Deno.test("a password change whose answer was lost leaves keys that either password opens, once", async () => {
  await using dir = await tempDir();
  const folder = `${dir.path}/alice`;
  const { keyring } = await Keyring.open(folder, PASSWORD, portableCrypto);
  const own = await keyring.add(portableCrypto.parsePrivateKey(der), PASSWORD);
  // Changed (the login has the new password), then not changed (it still has that one).
  const tries: [string, string][] = [["second password", "second password"], [
    "third password",
    "second password",
  ]];
  for (const [next, login] of tries) {
    // The copies are written, the CPW's answer never comes: the server may hold either.
    await keyring.writeNext(next);
    const opened = await Keyring.open(folder, login, portableCrypto);
    assert.equal(opened.keyring.byFingerprint(own.fingerprint)?.fingerprint, own.fingerprint);
    assert.deepEqual(opened.unreadable, []);
    opened.keyring.dispose();
    // The login's password is the one kept: the file opens with it, no copy is left.
    assert.deepEqual(await filesIn(folder), [own.path]);
    assert.equal((await Keyring.open(folder, login, portableCrypto)).keyring.size, 1);
  }
  // A refused change leaves the files as they were.
  await keyring.writeNext("refused");
  await keyring.dropNext();
  keyring.dispose();
  assert.deepEqual(await filesIn(folder), [own.path]);
  assert.equal((await Keyring.open(folder, "second password", portableCrypto)).keyring.size, 1);
});

Deno.test("contacts' pins: first use, current, earlier, changed; verified kept; read back", async () => {
  await using dir = await tempDir();
  const path = `${dir.path}/contacts`;
  const [a, b, c] = ["A", "B", "C"].map((x) => `SHA256:${x.repeat(42)}A`) as [
    string,
    string,
    string,
  ];
  await Deno.writeTextFile(path, "# a comment the user wrote\n");
  const contacts = await Contacts.load(path);
  assert.equal(contacts.status("bob", a), "first_use");
  await contacts.pin("bob", a, false);
  await contacts.pin("bob", b, true);
  assert.equal(contacts.status("bob", b), "current");
  assert.equal(contacts.status("bob", a), "earlier");
  assert.equal(contacts.status("bob", c), "changed");
  await contacts.pin("bob", c, false, false);
  assert.equal(contacts.status("bob", c), "earlier", "not current: pinned as an earlier key");

  const again = await Contacts.load(path);
  assert.deepEqual(again.keysOf("bob"), [
    { fingerprint: c, verified: false },
    { fingerprint: a, verified: false },
    { fingerprint: b, verified: true },
  ]);
  // Pinning a verified key again, unverified, keeps it verified.
  await again.pin("bob", b, false);
  assert.equal(again.currentOf("bob")?.verified, true);
  const text = await Deno.readTextFile(path);
  assert.ok(text.startsWith("# a comment the user wrote\n"));
  if (Deno.build.os !== "windows") assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
});

Deno.test("the replay memory keeps the newest envelopes per contact across restarts", async () => {
  await using dir = await tempDir();
  const digest = (i: number) => i.toString(16).padStart(64, "0");
  const memory = new ReplayMemory(dir.path, 3);
  for (let i = 1; i <= 7; i++) await memory.remember("alice", digest(i), `m ${i}`);
  assert.equal(await memory.openedBefore("alice", digest(7)), true);
  assert.equal(await memory.openedBefore("bob", digest(7)), false, "per contact");
  assert.equal(await memory.openedAs("alice", "m 7"), true);

  const reread = new ReplayMemory(dir.path, 3);
  for (const i of [5, 6, 7]) assert.equal(await reread.openedBefore("alice", digest(i)), true);
  for (const i of [1, 2, 3, 4]) assert.equal(await reread.openedBefore("alice", digest(i)), false);
  assert.equal(await reread.openedAs("alice", "m 5"), true);
  assert.equal(await reread.openedAs("alice", "m 4"), false);
  // Cut back when it grew to twice the limit: the file stays small.
  const lines = (await Deno.readTextFile(`${dir.path}/alice`)).trim().split("\n");
  assert.ok(lines.length < 6, `${lines.length} lines`);
});
