/**
 * The key the encrypted recordings (*-encrypted.json) were written with, as TEMPORAL_ENCRYPTION_KEYS
 * would give it. Test data, committed on purpose: it protects nothing and must never be used for
 * a real deployment (make your own with `openssl rand -base64 32`).
 */
export const RECORDED_WITH_KEYS = 'recorded-a:OUXTGlIr5eA95Do+ATm0fX4ueOvRjsfHH13gq/vptOg=';
