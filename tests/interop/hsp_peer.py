#!/usr/bin/env python3
"""An independent HSP/1 peer for the x25519 and X25519MLKEM768 groups (PROTOCOL-v1.md §1-§3,
§2.6), written from the specification alone with pyca/cryptography (X25519, ML-KEM-768, RSA-PSS,
HKDF, AES-CBC, HMAC) and nothing of this repository's code. tests/interop/interop.test.ts runs it
against the real server (client mode) and the real client library (server mode) over loopback.

  hsp_peer.py client PORT GROUP          handshake with 127.0.0.1:PORT, send PNG, expect its ACK
  hsp_peer.py server KEY.pem GROUP       listen on 127.0.0.1:0 (prints "port N"), serve one
                                         connection: handshake, then answer one PNG with ACK

Prints one JSON line with what it saw; exits non-zero on any failure.
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
from cryptography.hazmat.primitives.asymmetric import mlkem, padding, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

GROUPS = {"x25519": 0x001D, "x25519mlkem768": 0x11EC}
EK_LEN, CT_LEN, X_LEN = 1184, 1088, 32
SHARE_LEN = {  # (client share, server share), §2.1 and §2.6
    0x001D: (X_LEN, X_LEN),
    0x11EC: (EK_LEN + X_LEN, CT_LEN + X_LEN),
}
CONTEXT = b"HSP/1 server handshake\x00"
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


class Failure(Exception):
    pass


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise Failure("connection closed")
        out += chunk
    return out


def read_frame(sock):
    (length,) = struct.unpack(">I", read_exact(sock, 4))
    if not 1 <= length <= 1048576:
        raise Failure(f"frame length {length}")
    return read_exact(sock, length)


def write_frame(sock, body):
    sock.sendall(struct.pack(">I", len(body)) + body)


def x25519_secret(private, peer_public):
    # pyca refuses the all-zero result of a small-order point itself (ValueError).
    z = private.exchange(x25519.X25519PublicKey.from_public_bytes(peer_public))
    if z == bytes(32):
        raise Failure("all-zero X25519 secret")
    return z


def key_schedule(z, transcript_hash):
    prk = hmac.new(transcript_hash, z, hashlib.sha256).digest()  # HKDF-Extract, RFC 5869
    okm = HKDFExpand(algorithm=hashes.SHA256(), length=128, info=b"HSP/1 keys").derive(prk)
    return {"c2s": (okm[0:32], okm[32:64]), "s2c": (okm[64:96], okm[96:128])}


class Records:
    """§3: IV || AES-256-CBC(PKCS#7) || HMAC-SHA-256(seq || IV || C), a counter per direction."""

    def __init__(self, send, receive):
        self.send_keys, self.receive_keys = send, receive
        self.send_seq = self.receive_seq = 0

    def seal(self, plaintext):
        enc, mac = self.send_keys
        iv = os.urandom(16)
        padder = sym_padding.PKCS7(128).padder()
        padded = padder.update(plaintext) + padder.finalize()
        encryptor = Cipher(algorithms.AES(enc), modes.CBC(iv)).encryptor()
        c = encryptor.update(padded) + encryptor.finalize()
        t = hmac.new(mac, struct.pack(">Q", self.send_seq) + iv + c, hashlib.sha256).digest()
        self.send_seq += 1
        return iv + c + t

    def open(self, record):
        enc, mac = self.receive_keys
        if len(record) < 64 or (len(record) - 48) % 16 != 0:
            raise Failure("bad record length")
        iv, c, t = record[:16], record[16:-32], record[-32:]
        want = hmac.new(mac, struct.pack(">Q", self.receive_seq) + iv + c, hashlib.sha256).digest()
        if not hmac.compare_digest(t, want):
            raise Failure("record MAC does not verify")
        self.receive_seq += 1
        decryptor = Cipher(algorithms.AES(enc), modes.CBC(iv)).decryptor()
        padded = decryptor.update(c) + decryptor.finalize()
        unpadder = sym_padding.PKCS7(128).unpadder()
        return unpadder.update(padded) + unpadder.finalize()


def run_client(port, group_name):
    group = GROUPS[group_name]
    x_private = x25519.X25519PrivateKey.generate()
    x_public = x_private.public_key().public_bytes_raw()
    kem = None
    if group == 0x11EC:
        kem = mlkem.MLKEM768PrivateKey.generate()
        share = kem.public_key().public_bytes_raw() + x_public  # ML-KEM part first
    else:
        share = x_public
    hello = b"CHL" + bytes([1]) + struct.pack(">H", group) + os.urandom(32) + share
    with socket.create_connection(("127.0.0.1", port)) as sock:
        write_frame(sock, hello)
        reply = read_frame(sock)
        if reply[:3] == b"ERR":
            raise Failure(f"server refused: {reply[3:].decode()}")
        if reply[:3] != b"SHL" or reply[3] != 1:
            raise Failure("not a version-1 ServerHello")
        if struct.unpack(">H", reply[4:6])[0] != group:
            raise Failure("group not echoed")
        at = 6 + 32
        server_share = reply[at:at + SHARE_LEN[group][1]]
        at += SHARE_LEN[group][1]
        (key_len,) = struct.unpack(">H", reply[at:at + 2])
        server_key = reply[at + 2:at + 2 + key_len]
        at += 2 + key_len
        unsigned = reply[:at]
        (sig_len,) = struct.unpack(">H", reply[at:at + 2])
        signature = reply[at + 2:at + 2 + sig_len]
        if at + 2 + sig_len != len(reply) or len(server_share) != SHARE_LEN[group][1]:
            raise Failure("ServerHello lengths do not add up")
        public = serialization.load_der_public_key(server_key)
        if public.key_size < 2048:
            raise Failure("server key below 2048 bits")
        transcript_hash = hashlib.sha256(hello + unsigned).digest()
        public.verify(signature, CONTEXT + transcript_hash, PSS, hashes.SHA256())
        if kem is not None:
            k = kem.decapsulate(server_share[:CT_LEN])
            z = k + x25519_secret(x_private, server_share[CT_LEN:])
        else:
            z = x25519_secret(x_private, server_share)
        keys = key_schedule(z, transcript_hash)
        records = Records(send=keys["c2s"], receive=keys["s2c"])
        write_frame(sock, records.seal(b'PNG{"id":7}'))
        answer = records.open(read_frame(sock)).decode()
        if not answer.startswith("ACK") or json.loads(answer[3:]).get("id") != 7:
            raise Failure(f"unexpected answer {answer!r}")
        fingerprint = "SHA256:" + base64.b64encode(
            hashlib.sha256(server_key).digest()).decode().rstrip("=")
        return {"group": group_name, "fingerprint": fingerprint, "answer": answer,
                "transcript_hash": transcript_hash.hex()}


def run_server(key_path, group_name):
    group = GROUPS[group_name]
    with open(key_path, "rb") as f:
        private_key = serialization.load_pem_private_key(f.read(), password=None)
    spki = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    print(f"port {listener.getsockname()[1]}", flush=True)
    sock, _ = listener.accept()
    with sock, listener:
        hello = read_frame(sock)
        if hello[:3] != b"CHL" or hello[3] != 1 or struct.unpack(">H", hello[4:6])[0] != group:
            raise Failure("not a version-1 ClientHello in the expected group")
        client_share = hello[6 + 32:]
        if len(client_share) != SHARE_LEN[group][0]:
            raise Failure("client share length")
        x_private = x25519.X25519PrivateKey.generate()
        x_public = x_private.public_key().public_bytes_raw()
        if group == 0x11EC:
            ek = mlkem.MLKEM768PublicKey.from_public_bytes(client_share[:EK_LEN])
            k, ct = ek.encapsulate()
            z = k + x25519_secret(x_private, client_share[EK_LEN:])
            share = ct + x_public
        else:
            z = x25519_secret(x_private, client_share)
            share = x_public
        unsigned = (b"SHL" + bytes([1]) + struct.pack(">H", group) + os.urandom(32) + share
                    + struct.pack(">H", len(spki)) + spki)
        transcript_hash = hashlib.sha256(hello + unsigned).digest()
        signature = private_key.sign(CONTEXT + transcript_hash, PSS, hashes.SHA256())
        write_frame(sock, unsigned + struct.pack(">H", len(signature)) + signature)
        keys = key_schedule(z, transcript_hash)
        records = Records(send=keys["s2c"], receive=keys["c2s"])
        request = records.open(read_frame(sock)).decode()
        if not request.startswith("PNG"):
            raise Failure(f"unexpected request {request!r}")
        request_id = json.loads(request[3:])["id"]
        write_frame(sock, records.seal(f'ACK{{"id":{request_id}}}'.encode()))
        return {"group": group_name, "request": request,
                "transcript_hash": transcript_hash.hex()}


def main():
    try:
        if sys.argv[1] == "client":
            result = run_client(int(sys.argv[2]), sys.argv[3])
        else:
            result = run_server(sys.argv[2], sys.argv[3])
    except Exception as err:  # report, whatever failed
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
