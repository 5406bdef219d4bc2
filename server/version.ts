// The product version, printed by --version of both programs.
export const VERSION = "0.1.0";
/** The protocol this build speaks. */
export const PROTOCOL = "HSP/1";
