#ifndef C_TOLLGATE_ZLIB_H
#define C_TOLLGATE_ZLIB_H

// The system zlib, for what compress-nio does not expose: an inflate that tells a complete
// stream from a truncated one, and CRC-32 arithmetic for gzip members assembled from parts.
#include <zlib.h>

static inline int CTollgateZlib_inflateInit2(z_streamp stream, int windowBits) {
    return inflateInit2(stream, windowBits);
}

// z_off_t is a macro, which Swift does not import: the length as a plain long.
static inline unsigned long CTollgateZlib_crc32_combine(unsigned long crc1, unsigned long crc2, long length2) {
    return crc32_combine(crc1, crc2, (z_off_t)length2);
}

#endif
