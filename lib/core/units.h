#ifndef BANGER_UNITS_H
#define BANGER_UNITS_H
#include <stdint.h>
int bng_parse_size(const char *s, uint64_t *out);
int bng_parse_duration(const char *s, int64_t *out_seconds);
/* "8G", "1.5G", "512M", "100B" (malloc'd). */
char *bng_format_size(uint64_t bytes);
#endif
