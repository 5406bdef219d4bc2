// Terminal colors (SGR sequences), or none: every formatter takes a Style so that --no-color,
// NO_COLOR and non-terminal output share one code path.

/** Wraps text in one presentation; the identity when colors are off. */
export type Paint = (text: string) => string;

export interface Style {
  readonly enabled: boolean;
  readonly bold: Paint;
  readonly dim: Paint;
  readonly red: Paint;
  readonly green: Paint;
  readonly yellow: Paint;
  readonly cyan: Paint;
  /** A stable color per username, so that a conversation is easy to follow. */
  readonly user: (name: string) => string;
  /** How escapes of unsafe characters are shown (reverse video: clearly not the peer's text). */
  readonly escape: Paint;
}

const sgr = (open: number, close: number): Paint => (text) => `\x1b[${open}m${text}\x1b[${close}m`;

/** 256-color indexes that read well on dark and light backgrounds. */
const USER_COLORS = [33, 37, 70, 135, 166, 172, 31, 127, 98, 130] as const;

function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const plain: Paint = (text) => text;

/** A Style with or without colors. */
export function makeStyle(enabled: boolean): Style {
  if (!enabled) {
    return {
      enabled,
      bold: plain,
      dim: plain,
      red: plain,
      green: plain,
      yellow: plain,
      cyan: plain,
      user: plain,
      escape: plain,
    };
  }
  return {
    enabled,
    bold: sgr(1, 22),
    dim: sgr(2, 22),
    red: sgr(31, 39),
    green: sgr(32, 39),
    yellow: sgr(33, 39),
    cyan: sgr(36, 39),
    user: (name) =>
      `\x1b[1;38;5;${USER_COLORS[hash(name) % USER_COLORS.length]}m${name}\x1b[22;39m`,
    escape: sgr(7, 27),
  };
}

/**
 * Whether to color: never with --no-color or a non-empty NO_COLOR (no-color.org), nor when the
 * output is not a terminal.
 */
export function wantsColor(
  noColorFlag: boolean,
  env: (name: string) => string | undefined,
  isTerminal: boolean,
): boolean {
  const noColor = env("NO_COLOR");
  return !noColorFlag && (noColor === undefined || noColor === "") && isTerminal;
}
