// The key that per-address limits count under (PROTOCOL §5: connections, sign-ups, login
// failures, handshakes per source address). An IPv4 address is its own key. An IPv6 host is
// usually given a whole /64, so one machine can pick a fresh address for every connection:
// counting per address would give it 2^64 budgets. IPv6 addresses are therefore counted per
// /64 prefix, and an IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address it maps.

/** Groups of 16 bits in the /64 prefix of an IPv6 address. */
const PREFIX_GROUPS = 4;

/**
 * The limit key of a peer's address: IPv4 as it is, IPv6 as its /64 written `a:b:c:d::/64`
 * (lower-case hex, no leading zeros), IPv4-mapped IPv6 as the IPv4 address. Anything that is
 * not an IP address (a Unix socket path, a test double) is its own key.
 */
export function addressKey(hostname: string): string {
  const host = hostname.startsWith("[") && hostname.endsWith("]")
    ? hostname.slice(1, -1)
    : hostname;
  if (!host.includes(":")) return host;
  const groups = ipv6Groups(host.split("%")[0]!);
  if (groups === undefined) return host;
  // ::ffff:0:0/96 holds IPv4 addresses seen through an IPv6 socket.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    const [hi, lo] = [groups[6]!, groups[7]!];
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  }
  return `${groups.slice(0, PREFIX_GROUPS).map((g) => g.toString(16)).join(":")}::/64`;
}

/** The eight 16-bit groups of an IPv6 address in text form, or undefined if it is not one. */
function ipv6Groups(text: string): number[] | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const parse = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        // A trailing dotted IPv4 part fills the last two groups.
        const octets = piece.split(".");
        if (octets.length !== 4 || !octets.every((o) => /^[0-9]{1,3}$/.test(o) && +o <= 255)) {
          return undefined;
        }
        const [a, b, c, d] = octets.map(Number) as [number, number, number, number];
        out.push((a << 8) | b, (c << 8) | d);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(piece)) {
        out.push(parseInt(piece, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = parse(halves[0]!);
  const tail = halves.length === 2 ? parse(halves[1]!) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  return [...head, ...new Array<number>(missing).fill(0), ...tail];
}
