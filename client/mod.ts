// Public API of the client shell, for tests and for embedding the client in other tools.
export * from "./args.ts";
export * from "./commands.ts";
export * from "./config.ts";
export * from "./connection.ts";
export * from "./contacts.ts";
export * from "./display.ts";
export * from "./escape.ts";
export type * from "./events.ts";
export * from "./held_messages.ts";
export * from "./key_file.ts";
export * from "./keyring.ts";
export * from "./known_hosts.ts";
export * from "./repl.ts";
export * from "./replay_memory.ts";
export * from "./sealing.ts";
export * from "./style.ts";
export * from "./terminal.ts";
export * from "./trace.ts";
