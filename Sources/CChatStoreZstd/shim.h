#ifndef CCHATSTORE_ZSTD_SHIM_H
#define CCHATSTORE_ZSTD_SHIM_H
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zdict.h>
#include <zstd_errors.h>

/// Wrapper so Swift can test the ZSTD_CONTENTSIZE_* macros.
static inline unsigned long long cchatstore_zstd_contentsize_unknown(void) { return ZSTD_CONTENTSIZE_UNKNOWN; }
static inline unsigned long long cchatstore_zstd_contentsize_error(void) { return ZSTD_CONTENTSIZE_ERROR; }
#endif
