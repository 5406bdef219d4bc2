// RFC 7919 Appendix A finite-field groups (generator 2), keyed by their TLS NamedGroup id.
// The primes are data: crypto/groups.json is the shared contract's copy, embedded at build time.
import data from "./groups.json" with { type: "json" };

/** An RFC 7919 group: its TLS NamedGroup id, name, prime and byte length of the prime. */
export interface DhGroup {
  readonly id: number;
  readonly name: GroupName;
  readonly bits: number;
  /** len(p): shares and the shared secret are always exactly this many bytes (§2.1, §2.5). */
  readonly byteLength: number;
  readonly p: bigint;
  /** The prime as exactly byteLength big-endian bytes. */
  readonly pBytes: Uint8Array;
  readonly g: bigint;
  /**
   * Bits of the private exponent: RFC 7919 §5.2 asks for at least 225/275/325 bits of
   * work factor; PROTOCOL §2.1 asks for 256 bits, 320+ for the two larger groups.
   */
  readonly exponentBits: number;
}

export type GroupName = "ffdhe2048" | "ffdhe3072" | "ffdhe4096";

const EXPONENT_BITS: Record<GroupName, number> = {
  ffdhe2048: 256,
  ffdhe3072: 320,
  ffdhe4096: 384,
};

function build(entry: (typeof data.groups)[number]): DhGroup {
  const name = entry.name as GroupName;
  const byteLength = entry.bits / 8;
  const pBytes = new Uint8Array(byteLength);
  for (let i = 0; i < byteLength; i++) pBytes[i] = parseInt(entry.p.slice(2 * i, 2 * i + 2), 16);
  return {
    id: entry.id,
    name,
    bits: entry.bits,
    byteLength,
    p: BigInt("0x" + entry.p),
    pBytes,
    g: BigInt(entry.g),
    exponentBits: EXPONENT_BITS[name],
  };
}

/** Every group HSP/1 defines, in id order. */
export const GROUPS: readonly DhGroup[] = data.groups.map(build);

/** The group with TLS NamedGroup id `id`, or undefined. */
export function groupById(id: number): DhGroup | undefined {
  return GROUPS.find((g) => g.id === id);
}

/** The group called `name`, or undefined. */
export function groupByName(name: string): DhGroup | undefined {
  return GROUPS.find((g) => g.name === name);
}
