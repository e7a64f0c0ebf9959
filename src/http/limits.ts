/** Admin request bodies: a config of 100 mappings fits many times over. */
export const ADMIN_BODY_LIMIT_BYTES = 256 * 1024;
