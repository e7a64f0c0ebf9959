/** Admin request bodies: a config of 100 mappings fits many times over. */
export const ADMIN_BODY_LIMIT_BYTES = 256 * 1024;

/** Exchange bodies: a 16 KiB ID token and its envelope. */
export const EXCHANGE_BODY_LIMIT_BYTES = 32 * 1024;
