/**
 * FNV-1a, 32 bits, over the string's UTF-16 code units (charCodeAt, not UTF-8 bytes): a small,
 * fast, well-spread hash for naming and seeding, not for security. Client order ids embed it
 * (lib/engine/ids.ts), so its output for a given string must never change: orders already on an
 * exchange and recorded workflow histories carry it.
 */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
