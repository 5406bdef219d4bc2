// The plain-relay baseline of bench/load.ts: the server's framing (protocol/channel.ts, with
// its coalescing writes) and routing (a map from user to connection, ACK to the sender, DLV
// to the recipient), but no crypto, no JSON and no event log. It is the upper bound for
// relaying on this machine, so the load report can say what crypto, JSON and durability cost.
//
//   deno run --allow-net bench/plain_relay.ts [--host 127.0.0.1] [--port 0]
//
// Wire (every message one §1 frame; names are UTF-8, at most 255 bytes):
//   client → relay  "LGN" || name                                 → "ACK" || u32 0
//                   "MSG" || u32 id || u8 to_len || to || text     → "ACK" || u32 id to the
//                        sender (or "ERR" || u32 id for an unknown recipient), and
//                        "DLV" || u8 from_len || from || text to the recipient
//                   "DAK" || anything                              → nothing (read and dropped)
import { parseArgs } from "node:util";
import { FrameReader, FrameWriter } from "../protocol/channel.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const LGN = 0x4c; // "L"
const MSG = 0x4d; // "M"
/** "MSG" || u32 id || u8 to_len: bytes before the recipient's name. */
const MSG_HEADER = 8;
/** Longest name the one-byte length can carry. */
export const MAX_RELAY_NAME = 255;

function tagged(tag: string, rest: number): Uint8Array {
  const out = new Uint8Array(3 + rest);
  out.set(encoder.encode(tag));
  return out;
}

/** "LGN" || name. */
export function relayLogin(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  const out = tagged("LGN", bytes.length);
  out.set(bytes, 3);
  return out;
}

/** "MSG" || u32 id || u8 to_len || to || text. */
export function relayMessage(id: number, to: Uint8Array, text: Uint8Array): Uint8Array {
  if (to.length > MAX_RELAY_NAME) throw new RangeError(`name of ${to.length} bytes`);
  const out = tagged("MSG", 5 + to.length + text.length);
  new DataView(out.buffer).setUint32(3, id);
  out[7] = to.length;
  out.set(to, MSG_HEADER);
  out.set(text, MSG_HEADER + to.length);
  return out;
}

/** "ACK"/"ERR" || u32 id. */
function relayReply(tag: "ACK" | "ERR", id: number): Uint8Array {
  const out = tagged(tag, 4);
  new DataView(out.buffer).setUint32(3, id);
  return out;
}

/** "DLV" || u8 from_len || from || text, built from the sender's name and the MSG's text. */
function relayDeliver(from: Uint8Array, msg: Uint8Array, textAt: number): Uint8Array {
  const text = msg.subarray(textAt);
  const out = tagged("DLV", 1 + from.length + text.length);
  out[3] = from.length;
  out.set(from, 4);
  out.set(text, 4 + from.length);
  return out;
}

/** What a relay client reads: the reply to request `id`, or a delivered text. */
export type RelayEvent =
  | { kind: "ack"; id: number; ok: boolean }
  | { kind: "deliver"; from: string; text: Uint8Array };

/** Decodes a frame from the relay; undefined for anything else. */
export function parseRelayFrame(body: Uint8Array): RelayEvent | undefined {
  const tag = String.fromCharCode(body[0] ?? 0, body[1] ?? 0, body[2] ?? 0);
  if ((tag === "ACK" || tag === "ERR") && body.length === 7) {
    const id = new DataView(body.buffer, body.byteOffset, body.length).getUint32(3);
    return { kind: "ack", id, ok: tag === "ACK" };
  }
  if (tag === "DLV" && body.length >= 4) {
    const fromEnd = 4 + body[3]!;
    if (fromEnd > body.length) return undefined;
    return {
      kind: "deliver",
      from: decoder.decode(body.subarray(4, fromEnd)),
      text: body.subarray(fromEnd),
    };
  }
  return undefined;
}

interface RelayPeer {
  readonly writer: FrameWriter;
  name: Uint8Array | undefined;
}

/** A running plain relay. */
export class PlainRelay {
  readonly #listener: Deno.TcpListener;
  readonly #online = new Map<string, RelayPeer>();
  readonly #conns = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;

  constructor(host: string, port: number) {
    this.#listener = Deno.listen({ hostname: host, port, transport: "tcp" });
    this.#accepting = this.#acceptLoop();
  }

  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch {
        return; // listener closed
      }
      try {
        conn.setNoDelay(true);
      } catch { /* not fatal */ }
      this.#conns.add(conn);
      void this.#serve(conn).finally(() => this.#conns.delete(conn));
    }
  }

  async #serve(conn: Deno.Conn): Promise<void> {
    const reader = new FrameReader(conn);
    const peer: RelayPeer = { writer: new FrameWriter(conn), name: undefined };
    let key: string | undefined;
    try {
      while (true) {
        const body = await reader.next();
        if (body === null) return;
        // The same routing decisions as server/chat.ts, on bytes instead of JSON.
        if (body[0] === MSG && peer.name !== undefined && body.length >= MSG_HEADER) {
          const view = new DataView(body.buffer, body.byteOffset, body.length);
          const id = view.getUint32(3);
          const toEnd = MSG_HEADER + body[7]!;
          const to = this.#online.get(decoder.decode(body.subarray(MSG_HEADER, toEnd)));
          peer.writer.send(relayReply(to ? "ACK" : "ERR", id));
          to?.writer.send(relayDeliver(peer.name, body, toEnd));
        } else if (body[0] === LGN) {
          key = decoder.decode(body.subarray(3));
          peer.name = body.slice(3);
          this.#online.set(key, peer);
          peer.writer.send(relayReply("ACK", 0));
        } // DAK and anything else: dropped
      }
    } catch {
      // A reset or a slow reader: the connection ends.
    } finally {
      if (key !== undefined && this.#online.get(key) === peer) this.#online.delete(key);
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }

  /** Stops accepting and closes every connection. */
  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    for (const conn of this.#conns) {
      try {
        conn.close();
      } catch { /* closed */ }
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "0" },
    },
  });
  const relay = new PlainRelay(values.host, Number(values.port));
  console.log(`listening on ${relay.addr.hostname}:${relay.addr.port}`);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => void relay.close().then(() => Deno.exit(0)));
  }
}
