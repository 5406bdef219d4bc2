// The store's public API: events, their projection, the durable log (a file, or PostgreSQL
// shared by several nodes), compaction, and opening whichever `--store URL` names.

export * from "./errors.ts";
export {
  assertEvent,
  type CidRemembered,
  type Event,
  EVENT_SCHEMA,
  EVENT_TYPES,
  type EventSchema,
  type EventType,
  type FieldKind,
  isEventType,
  type LogCompacted,
  type LoggedOut,
  type LoginFailed,
  type LoginSucceeded,
  type MessageDelivered,
  type MessageSent,
  type PasswordChanged,
  type SealedMessageSent,
  toEvent,
  type UserKeyPublished,
  type UserSignedUp,
} from "./events.ts";
export { CidMemory, type RememberedCid } from "./cid_memory.ts";
export { MessageQueue, type QueuedMessage } from "./message_queue.ts";
export {
  evolve,
  initialState,
  type PublishedKey,
  queuedFor,
  rememberedCid,
  replay,
  snapshot,
  type State,
  type StateSnapshot,
  type User,
  utf8Bytes,
} from "./projection.ts";
export {
  decodeHeader,
  decodeRecord,
  encodeHeader,
  encodeRecord,
  EVENT_TAGS,
  FORMAT_VERSION,
  type Header,
  HEADER_BYTES,
  MAX_PAYLOAD_BYTES,
  MIN_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  recordAt,
} from "./record_format.ts";
export {
  DEFERRED_COMMIT_MS,
  describeDamage,
  type EventLog,
  type FsyncMode,
  LOG_DIR_MODE,
  LOG_FILE_MODE,
  type LogStats,
  MAX_BATCH_BYTES,
  type OpenedLog,
  openEventLog,
  type OpenOptions,
  type OpenReport,
  readEventLog,
  type ReadOptions,
  type ReadReport,
  type TornTail,
} from "./event_log.ts";
export {
  canonicalSnapshot,
  compactionEvents,
  compactLog,
  type CompactOptions,
  type CompactReport,
} from "./compact.ts";
export {
  formatBytes,
  plural,
  PROGRESS_DELAY_MS,
  PROGRESS_INTERVAL_MS,
  PROGRESS_LINE_INTERVAL_MS,
  type ProgressOptions,
  replayProgress,
} from "./progress.ts";
export {
  AppendConflict,
  type ConflictRule,
  type EventStore,
  FileEventStore,
  type Follower,
} from "./event_store.ts";
export {
  DEFAULT_SCHEMA,
  fileStoreUrl,
  parseStoreUrl,
  redactUrl,
  type StoreUrl,
  StoreUrlError,
} from "./store_url.ts";
export {
  APPLICATION_NAME,
  CONNECT_TIMEOUT_S,
  importIntoPostgres,
  type OpenedPostgresStore,
  openPostgresStore,
  POLL_INTERVAL_MS,
  PostgresEventStore,
  postgresLogHead,
  type PostgresOpenOptions,
  type PostgresOpenReport,
  type PostgresReadOptions,
  type PostgresStats,
  type PostgresStatus,
  QUERY_TIMEOUT_MS,
  readPostgresLog,
} from "./postgres_store.ts";
export {
  type OpenedStore,
  openStore,
  type OpenStoreOptions,
  type StoreOpenReport,
} from "./open_store.ts";
