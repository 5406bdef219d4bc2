// Every limit and default timeout of HSP/1 (PROTOCOL §1, §3, §4.3, §5) in one place.

/** Largest frame body any side accepts (§1): 1 MiB. */
export const MAX_FRAME = 1_048_576;
/** Largest frame body the server accepts before the handshake completes (§1). */
export const MAX_HANDSHAKE_FRAME = 8192;
/** Bytes of the u32 length prefix that starts every frame (§1). */
export const FRAME_HEADER = 4;

/** Records one direction may carry before the connection must close (§3): 2^32. */
export const MAX_RECORDS = 2 ** 32;

/** Username pattern (§4.3). */
export const USERNAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
/** Password length in UTF-8 bytes (§4.3). */
export const MIN_PASSWORD_BYTES = 8;
export const MAX_PASSWORD_BYTES = 1024;
/** Message text length in UTF-8 bytes (§4.3). */
export const MIN_TEXT_BYTES = 1;
export const MAX_TEXT_BYTES = 16384;
/** Longest `sealed` (§8.3): base64 of an envelope, in characters. */
export const MAX_SEALED_CHARS = 32768;
/**
 * Longest user `key` we read (§8.1): base64 of a DER SubjectPublicKeyInfo. A 4096-bit RSA key
 * takes 736 characters; anything much longer cannot be one of the keys §8.1 allows.
 */
export const MAX_USER_KEY_B64_CHARS = 1024;
/** Request ids run from 1 to 2^31 - 1 (§4). */
export const MAX_REQUEST_ID = 2 ** 31 - 1;
/** `msg` ids are opaque strings of at most 64 characters (§4.3). */
export const MAX_MSG_ID_CHARS = 64;
/** `cid`s are remembered per sender for at least this many sends (§4.3). */
export const CID_MEMORY = 1024;
/** Longest `cid` we accept; the spec leaves it open, so we bound it here. */
export const MAX_CID_CHARS = 64;

/** Server defaults of §5. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 300_000;
export const CLIENT_PING_INTERVAL_MS = 60_000;
/**
 * Our own bound, inside §5's idle rule: a session that has not logged in this long after its
 * handshake is closed, so connections that never log in cannot be held open with PNGs.
 */
export const LOGIN_TIMEOUT_MS = 60_000;
/**
 * Most entries in one GUL answer: about 110 bytes each, so an answer stays near 110 KiB, far
 * inside MAX_FRAME, however many users there are (§4.1 lets an ACK carry `next` for the rest).
 */
export const MAX_GUL_PAGE = 1000;
export const LOGIN_FAILURES_PER_USER = 5;
export const LOGIN_FAILURES_PER_ADDRESS = 20;
/**
 * §5's per-user throttle counts failures per (user, source address), so that guessing from one
 * place does not lock the owner out elsewhere; this bound over all addresses together stops a
 * guesser spread over many addresses from getting 5 free tries at each.
 */
export const LOGIN_FAILURES_PER_USER_TOTAL = 100;
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60_000;
export const SIGNUPS_PER_ADDRESS = 30;
export const SIGNUP_WINDOW_MS = 10 * 60_000;
export const MSG_BURST = 20;
export const MSG_PER_SECOND = 10;
export const MAX_CONNECTIONS = 10_000;
export const MAX_CONNECTIONS_PER_ADDRESS = 64;

/** Longest username: the pattern's 1 + 31 characters (§4.3), checked before the regex runs. */
export const MAX_USERNAME_CHARS = 32;
/** Longest ERR `message` a client reads; the spec leaves it open, so we bound it here. */
export const MAX_ERROR_MESSAGE_CHARS = 1024;
/** Longest GSR `key`: base64 of the most a u16 `key_len` can hold (§2.2, §4.1). */
export const MAX_SERVER_KEY_B64_CHARS = 4 * Math.ceil(65_535 / 3);
