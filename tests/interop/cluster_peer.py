#!/usr/bin/env python3
"""An independent client of two nodes of one HSP/1 service (two servers sharing one PostgreSQL
log and one RSA key), written from PROTOCOL-v1.md alone with pyca/cryptography; the handshake,
records and requests are those of hsp_peer.py and sealed_peer.py beside it, themselves
independent of this repository's TypeScript. tests/interop/cluster_interop.test.ts runs it.

  cluster_peer.py PORT_A PORT_B

Checks that the two nodes behave as one service: a name signs up once across both, a message
sent on one node reaches its recipient on the other, a login on one node takes the session
over from the other, a cid retried on the other node gets the first answer. Then it sends a
burst of messages on node B, and after the first acknowledgements prints {"kill": "b"} and
waits for a line on stdin (the test SIGKILLs node B and answers); it retries what B did not
acknowledge on node A with the same cids, and has the recipient collect everything on node A:
nothing acknowledged may be lost, and no cid may be stored twice.
Prints one JSON line per stage; exits non-zero on any failure.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hsp_peer import Failure  # noqa: E402  (the §2/§3 peer beside this file)
from sealed_peer import Session, expect  # noqa: E402  (its logged-in connection)

PASSWORD = "cluster peer password"
BURST = 15
"""Messages sent on node B before it is killed (within the server's default burst of 20)."""
ACKS_BEFORE_KILL = 5


def stage(**fields):
    print(json.dumps(fields), flush=True)


def logged_in(port, user):
    session = Session(port)
    expect(session.request("LGN", user=user, password=PASSWORD), "ACK", f"LGN {user}")
    return session


def cross_node(port_a, port_b):
    """Sign-up, delivery, takeover and cid, each spanning the two nodes; returns the first msg."""
    on_a = Session(port_a)
    expect(on_a.request("SNU", user="ivy", password=PASSWORD), "ACK", "SNU ivy on A")
    on_b = Session(port_b)
    expect(on_b.request("SNU", user="ivy", password=PASSWORD), "ERR", "SNU ivy again on B",
           error="user_exists")
    expect(on_b.request("SNU", user="jo", password=PASSWORD), "ACK", "SNU jo on B")
    on_a.close()
    on_b.close()
    stage(signup="once across nodes")

    ivy = logged_in(port_a, "ivy")
    jo = logged_in(port_b, "jo")
    first = expect(ivy.request("MSG", to="jo", text="across", cid="x-1"), "ACK", "MSG on A")
    dlv = jo.dlv()
    if (dlv["from"], dlv["text"], dlv["msg"]) != ("ivy", "across", first["msg"]):
        raise Failure(f"jo on B got {dlv}, not ivy's message {first['msg']}")
    stage(delivery="A to B", msg=first["msg"])

    ivy_on_b = logged_in(port_b, "ivy")
    code, body = ivy.receive()
    if (code, body.get("reason")) != ("BYE", "logged_in_elsewhere"):
        raise Failure(f"ivy's session on A got {code} {body}, not BYE logged_in_elsewhere")
    ivy.close()
    stage(takeover="B took ivy's session from A")

    again = expect(ivy_on_b.request("MSG", to="jo", text="across", cid="x-1"), "ACK", "cid on B")
    if again["msg"] != first["msg"] or again["ts"] != first["ts"]:
        raise Failure(f"the cid retried on B was answered {again}, not as first {first}")
    stage(cid="the same answer on B")
    jo.close()
    return ivy_on_b, first["msg"]


def burst_then_kill(ivy_on_b):
    """Sends BURST messages on B, the last ones still unanswered when B is killed; returns
    the cids B acknowledged, with their msg ids."""
    first_id = 100
    acked = {}

    def send(i):
        body = {"id": first_id + i, "to": "jo", "text": f"burst {i}", "cid": f"k-{i}"}
        ivy_on_b.send("MSG", body)

    def read_ack():
        code, body = ivy_on_b.receive()
        if code != "ACK" or not first_id <= body.get("id", -1) < first_id + BURST:
            raise Failure(f"a burst message was answered {code} {body}")
        acked[f"k-{body['id'] - first_id}"] = body["msg"]

    for i in range(ACKS_BEFORE_KILL):
        send(i)
    while len(acked) < ACKS_BEFORE_KILL:
        read_ack()
    for i in range(ACKS_BEFORE_KILL, BURST):
        send(i)  # in flight when B dies: stored or not, answered or not
    stage(kill="b", acked=len(acked))
    if sys.stdin.readline().strip() != "killed":
        raise Failure("the test did not kill node B")
    try:
        while len(acked) < BURST:
            read_ack()
    except (OSError, Failure) as err:
        if "answered" in str(err):
            raise
    ivy_on_b.close()
    return acked


def run(port_a, port_b):
    ivy_on_b, first = cross_node(port_a, port_b)
    acked = burst_then_kill(ivy_on_b)
    acknowledged_by_b = len(acked)

    ivy = logged_in(port_a, "ivy")
    for i in range(BURST):
        cid = f"k-{i}"
        answer = expect(ivy.request("MSG", to="jo", text=f"burst {i}", cid=cid), "ACK", cid)
        if cid in acked and acked[cid] != answer["msg"]:
            raise Failure(f"{cid} acknowledged by B as {acked[cid]}, by A as {answer['msg']}")
        acked[cid] = answer["msg"]
    stage(retried_on_a=BURST, acknowledged_by_b=acknowledged_by_b)

    jo = logged_in(port_a, "jo")
    seen = {}
    while len(seen) < BURST:
        dlv = jo.dlv()
        if dlv["msg"] == first:
            continue  # delivered before; a second copy is allowed (at least once, §4.2)
        text = dlv["text"]
        if seen.get(text, dlv["msg"]) != dlv["msg"]:
            raise Failure(f"{text!r} stored twice: {seen[text]} and {dlv['msg']}")
        seen[text] = dlv["msg"]
    for i in range(BURST):
        delivered, acknowledged = seen[f"burst {i}"], acked[f"k-{i}"]
        if delivered != acknowledged:
            raise Failure(f"burst {i} delivered as {delivered}, acknowledged as {acknowledged}")
    jo.close()
    ivy.close()
    return {"delivered": len(seen), "acknowledged_by_b": acknowledged_by_b}


def main():
    try:
        result = run(int(sys.argv[1]), int(sys.argv[2]))
    except Exception as err:  # report, whatever failed
        print(json.dumps({"error": f"{type(err).__name__}: {err}"}), flush=True)
        sys.exit(1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
