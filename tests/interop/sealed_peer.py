#!/usr/bin/env python3
"""An independent client of HSP/1 sealed messages (PROTOCOL-v1.md §8), written from the
specification alone with pyca/cryptography (RSA-OAEP, RSA-PSS, AES-CBC, HMAC) and nothing of this
repository's code; the handshake and records (§2, §3) are hsp_peer.py's, itself independent.
tests/interop/sealed_interop.test.ts runs it against the real server.

  sealed_peer.py PORT

Publishes keys (SNU with a key, KEY), fetches them (GPK), sends and opens sealed messages with
every check of §8.5, rotates a key, and checks the server's refusals of §8.1 and §8.4. Then, as
"alice", it seals a message to "carol" (a user of the repository's own library, signed up
before it starts), prints {"ready": ...}, and waits for carol's sealed answer, which it opens.
Prints one JSON line per stage; exits non-zero on any failure.
"""

import base64
import hashlib
import hmac
import json
import os
import socket
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as sym_padding
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hsp_peer import (  # noqa: E402  (the §2/§3 peer beside this file)
    CONTEXT, Failure, Records, key_schedule, read_frame, write_frame, x25519_secret)

X25519 = 0x001D
LABEL = b"HSP/1 sealed key"
SIGNED_CONTEXT = b"HSP/1 sealed message\x00"
OAEP = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=LABEL)
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
TIMEOUT = 20


def spki(public_key):
    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def fingerprint_of(der):
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode().rstrip("=")


class Session:
    """One logged-in connection: requests matched by id, DLVs kept until asked for."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        x_private = x25519.X25519PrivateKey.generate()
        hello = (b"CHL" + bytes([1]) + struct.pack(">H", X25519) + os.urandom(32)
                 + x_private.public_key().public_bytes_raw())
        write_frame(self.sock, hello)
        reply = read_frame(self.sock)
        if reply[:3] != b"SHL":
            raise Failure(f"handshake refused: {reply[:80]!r}")
        at = 6 + 32
        server_share = reply[at:at + 32]
        at += 32
        (key_len,) = struct.unpack(">H", reply[at:at + 2])
        server_key = reply[at + 2:at + 2 + key_len]
        at += 2 + key_len
        (sig_len,) = struct.unpack(">H", reply[at:at + 2])
        transcript_hash = hashlib.sha256(hello + reply[:at]).digest()
        serialization.load_der_public_key(server_key).verify(
            reply[at + 2:at + 2 + sig_len], CONTEXT + transcript_hash, PSS, hashes.SHA256())
        keys = key_schedule(x25519_secret(x_private, server_share), transcript_hash)
        self.records = Records(send=keys["c2s"], receive=keys["s2c"])
        self.next_id = 1
        self.pushes = []

    def send(self, code, body):
        write_frame(self.sock, self.records.seal(code.encode() + json.dumps(body).encode()))

    def receive(self):
        plaintext = self.records.open(read_frame(self.sock)).decode()
        return plaintext[:3], json.loads(plaintext[3:])

    def request(self, code, **fields):
        request_id = self.next_id
        self.next_id += 1
        self.send(code, {"id": request_id, **fields})
        while True:
            answer, body = self.receive()
            if answer in ("ACK", "ERR") and body.get("id") == request_id:
                return answer, body
            self.pushes.append((answer, body))

    def dlv(self):
        """The next DLV (acknowledged with DAK, whatever becomes of it: §8.5)."""
        while True:
            while self.pushes:
                code, body = self.pushes.pop(0)
                if code == "DLV":
                    self.send("DAK", {"msg": body["msg"]})
                    return body
            self.pushes.append(self.receive())

    def close(self):
        self.sock.close()


def expect(answer, code, what, error=None):
    kind, body = answer
    if error is None and kind != "ACK":
        raise Failure(f"{what}: expected ACK, got {kind} {body}")
    if error is not None and (kind != "ERR" or body.get("code") != error):
        raise Failure(f"{what}: expected ERR {error}, got {kind} {body}")
    return body


# ─── §8.3: the envelope ────────────────────────────────────────────────────────────────────────

def seal(sender_name, sender_key, recipient_name, recipient_public, text, k=None, iv=None):
    k = k if k is not None else os.urandom(64)
    iv = iv if iv is not None else os.urandom(16)
    inner = json.dumps({"text": text}, ensure_ascii=False).encode()
    padder = sym_padding.PKCS7(128).padder()
    padded = padder.update(inner) + padder.finalize()
    encryptor = Cipher(algorithms.AES(k[:32]), modes.CBC(iv)).encryptor()
    ct = encryptor.update(padded) + encryptor.finalize()
    wrapped = recipient_public.encrypt(k, OAEP)
    body = (b"HSE" + bytes([1])
            + hashlib.sha256(spki(sender_key.public_key())).digest()
            + hashlib.sha256(spki(recipient_public)).digest()
            + struct.pack(">H", len(wrapped)) + wrapped + iv
            + struct.pack(">I", len(ct)) + ct)
    tag = hmac.new(k[32:], body, hashlib.sha256).digest()
    signed = (SIGNED_CONTEXT + sender_name.encode() + b"\x00" + recipient_name.encode() + b"\x00"
              + body + tag)
    sig = sender_key.sign(signed, PSS, hashes.SHA256())
    return base64.b64encode(body + tag + struct.pack(">H", len(sig)) + sig).decode()


class Refused(Exception):
    def __init__(self, check, why):
        super().__init__(f"{check}: {why}")
        self.check = check


def parse(envelope):
    at = 0

    def take(n):
        nonlocal at
        if n > len(envelope) - at:
            raise Refused("layout", "length mismatch")
        out = envelope[at:at + n]
        at += n
        return out

    if take(3) != b"HSE" or take(1) != b"\x01":
        raise Refused("layout", "magic or version")
    sender_kid, recipient_kid = take(32), take(32)
    (wrapped_len,) = struct.unpack(">H", take(2))
    wrapped, iv = take(wrapped_len), take(16)
    (ct_len,) = struct.unpack(">I", take(4))
    if ct_len == 0 or ct_len % 16:
        raise Refused("layout", "ciphertext length")
    ct = take(ct_len)
    body = envelope[:at]
    tag = take(32)
    (sig_len,) = struct.unpack(">H", take(2))
    sig = take(sig_len)
    if at != len(envelope):
        raise Refused("layout", "trailing bytes")
    return sender_kid, recipient_kid, wrapped, iv, ct, body, tag, sig


def open_sealed(session, dlv, me, my_keys, opened):
    """§8.5, in order. `my_keys`: kid -> private key; `opened`: digests seen."""
    try:
        envelope = base64.b64decode(dlv["sealed"], validate=True)
    except ValueError:
        raise Refused("layout", "not base64")
    sender_kid, recipient_kid, wrapped, iv, ct, body, tag, sig = parse(envelope)
    private = my_keys.get(recipient_kid)
    if private is None:
        raise Refused("recipient_key", "not one of my keys")
    kind, answer = session.request("GPK", user=dlv["from"],
                                   fingerprint=fingerprint_of_kid(sender_kid))
    if kind != "ACK":
        raise Refused("sender_key", f"{dlv['from']} never published it")
    der = base64.b64decode(answer["key"])
    if hashlib.sha256(der).digest() != sender_kid:
        raise Refused("sender_key", "the server's key is another")
    signed = (SIGNED_CONTEXT + dlv["from"].encode() + b"\x00" + me.encode() + b"\x00"
              + body + tag)
    try:
        serialization.load_der_public_key(der).verify(sig, signed, PSS, hashes.SHA256())
    except Exception:
        raise Refused("signature", "does not verify")
    try:
        k = private.decrypt(wrapped, OAEP)
    except Exception:
        raise Refused("unwrap", "does not decrypt")
    if len(k) != 64:
        raise Refused("unwrap", "not 64 bytes")
    if not hmac.compare_digest(hmac.new(k[32:], body, hashlib.sha256).digest(), tag):
        raise Refused("tag", "does not match")
    try:
        decryptor = Cipher(algorithms.AES(k[:32]), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ct) + decryptor.finalize()
        unpadder = sym_padding.PKCS7(128).unpadder()
        text = json.loads((unpadder.update(padded) + unpadder.finalize()).decode())["text"]
        if not isinstance(text, str) or not 1 <= len(text.encode()) <= 16384:
            raise ValueError("text")
    except Exception:
        raise Refused("inner", "not JSON with a text")
    digest = hashlib.sha256(envelope).digest()
    if digest in opened:
        raise Refused("replay", "opened before")
    opened.add(digest)
    return text


def fingerprint_of_kid(kid):
    return "SHA256:" + base64.b64encode(kid).decode().rstrip("=")


def new_key(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def b64(der):
    return base64.b64encode(der).decode()


def run(port):
    report = {}
    a1, b1, b2 = new_key(2048), new_key(3072), new_key(2048)
    alice_keys = {hashlib.sha256(spki(a1.public_key())).digest(): a1}
    bob_keys = {hashlib.sha256(spki(b1.public_key())).digest(): b1}
    opened = set()

    # §8.1: keys published at sign-up; bad ones refused.
    alice = Session(port)
    body = expect(alice.request("SNU", user="alice", password="alice-password",
                                key=b64(spki(a1.public_key()))), "ACK", "SNU alice")
    if body.get("fingerprint") != fingerprint_of(spki(a1.public_key())):
        raise Failure(f"SNU's ACK names {body.get('fingerprint')}, not alice's key")
    expect(alice.request("SNU", user="bob", password="bob-password",
                         key=b64(spki(b1.public_key()))), "ACK", "SNU bob")
    expect(alice.request("SNU", user="dave", password="dave-password"), "ACK", "SNU dave")
    refusals = {
        "1024 bits": b64(spki(new_key(1024).public_key())),
        "exponent 3": b64(spki(rsa.generate_private_key(3, 2048).public_key())),
        "EC P-256": b64(spki(ec.generate_private_key(ec.SECP256R1()).public_key())),
        "trailing byte": b64(spki(a1.public_key()) + b"\x00"),
    }
    for why, key in refusals.items():
        expect(alice.request("SNU", user="eve", password="eve-password", key=key), "ERR",
               f"SNU with a key of {why}", "invalid_key")
    expect(alice.request("LGN", user="alice", password="alice-password"), "ACK", "LGN alice")
    expect(alice.request("KEY", key=refusals["1024 bits"]), "ERR", "KEY 1024", "invalid_key")
    report["key_refusals"] = sorted(refusals) + ["KEY 1024 bits"]

    bob = Session(port)
    expect(bob.request("LGN", user="bob", password="bob-password"), "ACK", "LGN bob")
    gpk = expect(alice.request("GPK", user="bob"), "ACK", "GPK bob")
    if gpk["fingerprint"] != fingerprint_of(base64.b64decode(gpk["key"])) or not gpk["current"]:
        raise Failure(f"GPK bob: {gpk}")
    expect(alice.request("GPK", user="dave"), "ERR", "GPK dave", "no_key")
    expect(alice.request("GPK", user="nobody"), "ERR", "GPK nobody", "unknown_user")
    users = expect(alice.request("GUL"), "ACK", "GUL")["users"]
    keyed = {u["user"]: "fingerprint" in u for u in users}
    if keyed != {"alice": True, "bob": True, "carol": True, "dave": False}:
        raise Failure(f"GUL: {users}")

    # Sealed, end to end.
    bob_public = serialization.load_der_public_key(base64.b64decode(gpk["key"]))
    sealed = seal("alice", a1, "bob", bob_public, "hello bob, from python é🌍")
    expect(alice.request("MSG", to="bob", sealed=sealed), "ACK", "MSG sealed")
    dlv = bob.dlv()
    if dlv.get("sealed") != sealed:
        raise Failure("the DLV does not carry the envelope unchanged")
    report["opened"] = open_sealed(bob, dlv, "bob", bob_keys, opened)

    # §8.4 refusals.
    to_dave = seal("alice", a1, "dave", bob_public, "x")
    expect(alice.request("MSG", to="dave", sealed=to_dave), "ERR", "to dave", "stale_key")
    envelope = base64.b64decode(sealed)
    for why, bad in {"trailing byte": b64(envelope + b"\x00"),
                     "truncated": b64(envelope[:-1]),
                     "not base64": "not base64!"}.items():
        expect(alice.request("MSG", to="bob", sealed=bad), "ERR", why, "invalid_message")

    # Rotation: queued under bob's first key, then bob publishes a new one.
    bob.close()
    before = seal("alice", a1, "bob", bob_public, "sealed before the rotation")
    expect(alice.request("MSG", to="bob", sealed=before), "ACK", "MSG before")
    bob = Session(port)
    expect(bob.request("LGN", user="bob", password="bob-password"), "ACK", "LGN bob again")
    queued = bob.dlv()
    key = expect(bob.request("KEY", key=b64(spki(b2.public_key()))), "ACK", "KEY bob")
    if key["fingerprint"] != fingerprint_of(spki(b2.public_key())):
        raise Failure(f"KEY's ACK: {key}")
    bob_keys[hashlib.sha256(spki(b2.public_key())).digest()] = b2
    stale = seal("alice", a1, "bob", bob_public, "stale")
    expect(alice.request("MSG", to="bob", sealed=stale), "ERR", "MSG stale", "stale_key")
    old = expect(alice.request("GPK", user="bob", fingerprint=fingerprint_of(spki(b1.public_key()))),
                 "ACK", "GPK old")
    if old["current"]:
        raise Failure("bob's first key is still current")
    new = expect(alice.request("GPK", user="bob"), "ACK", "GPK new")
    after = seal("alice", a1, "bob",
                 serialization.load_der_public_key(base64.b64decode(new["key"])),
                 "sealed after the rotation")
    expect(alice.request("MSG", to="bob", sealed=after), "ACK", "MSG after")
    report["rotation"] = [open_sealed(bob, queued, "bob", bob_keys, opened),
                          open_sealed(bob, bob.dlv(), "bob", bob_keys, opened)]
    # A server delivering an old envelope again under a new id is caught by the replay memory.
    try:
        open_sealed(bob, {**dlv, "msg": "replayed"}, "bob", bob_keys, opened)
        raise Failure("a replayed envelope opened")
    except Refused as refused:
        report["replay"] = refused.check
    bob.close()

    # With the repository's own client library: carol signed up before this script started.
    carol = expect(alice.request("GPK", user="carol"), "ACK", "GPK carol")
    to_carol = seal("alice", a1, "carol",
                    serialization.load_der_public_key(base64.b64decode(carol["key"])),
                    "from python to carol")
    expect(alice.request("MSG", to="carol", sealed=to_carol), "ACK", "MSG carol")
    report["ready"] = fingerprint_of(spki(a1.public_key()))
    print(json.dumps(report), flush=True)
    answer = alice.dlv()
    if answer["from"] != "carol":
        raise Failure(f"a DLV from {answer['from']}")
    return {"from_carol": open_sealed(alice, answer, "alice", alice_keys, opened)}


def main():
    try:
        result = run(int(sys.argv[1]))
    except Exception as err:  # report, whatever failed
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
