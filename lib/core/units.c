/* Human units: sizes ("4G", "512M", "8GiB", "1048576") and durations
 * ("0", "90s", "30m", "24h", "1h30m"). Binary multiples: 1K = 1024. */
#include "internal.h"
#include "units.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int bng_parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return bng_err(BANGER_EINVAL, "invalid size '%s' (expected e.g. 512M, 4G)", s ? s : "");
	uint64_t v = 0;
	const char *p = s;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return bng_err(BANGER_EINVAL, "size '%s' is too large", s);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	int shift = 0;
	switch (toupper((unsigned char)*p)) {
	case '\0': break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return bng_err(BANGER_EINVAL, "invalid size '%s' (units: K, M, G, T)", s);
	}
	if (shift) {
		p++;
		if (!strcmp(p, "iB") || !strcmp(p, "B") || !strcmp(p, "b"))
			p += strlen(p);
	}
	if (*p)
		return bng_err(BANGER_EINVAL, "invalid size '%s' (units: K, M, G, T)", s);
	if (shift && v > (UINT64_MAX >> shift))
		return bng_err(BANGER_EINVAL, "size '%s' is too large", s);
	*out = v << shift;
	return 0;
}

int bng_parse_duration(const char *s, int64_t *out_seconds)
{
	if (!s || !isdigit((unsigned char)*s))
		return bng_err(BANGER_EINVAL, "invalid duration '%s' (expected e.g. 90s, 30m, 24h)", s ? s : "");
	bool bare = strspn(s, "0123456789") == strlen(s); /* plain number: seconds */
	int64_t total = 0;
	const char *p = s;
	while (*p) {
		if (!isdigit((unsigned char)*p))
			return bng_err(BANGER_EINVAL, "invalid duration '%s' (units: s, m, h, d)", s);
		int64_t v = 0;
		for (; isdigit((unsigned char)*p); p++) {
			if (v > 1000000000)
				return bng_err(BANGER_EINVAL, "duration '%s' is too large", s);
			v = v * 10 + (*p - '0');
		}
		int64_t mult = bare ? 1 : 0;
		if (!bare) {
			const char *u = strchr("smhd", *p);
			if (!*p || !u)
				return bng_err(BANGER_EINVAL, "invalid duration '%s' (units: s, m, h, d)", s);
			static const int64_t mults[] = {1, 60, 3600, 86400};
			mult = mults[u - "smhd"];
			p++;
		}
		total += v * mult;
		if (total > (int64_t)1 << 40)
			return bng_err(BANGER_EINVAL, "duration '%s' is too large", s);
	}
	*out_seconds = total;
	return 0;
}

char *bng_format_size(uint64_t bytes)
{
	static const char units[] = "KMGT";
	if (bytes < 1024)
		return bng_asprintf("%lluB", (unsigned long long)bytes);
	int u = -1;
	double v = (double)bytes;
	/* 1048575 bytes is "1.0M", not "1024.0K": round before picking the unit */
	while (v >= 1023.95 && u < 3) {
		v /= 1024;
		u++;
	}
	if (v == (double)(uint64_t)v)
		return bng_asprintf("%llu%c", (unsigned long long)v, units[u]);
	return bng_asprintf("%.1f%c", v, units[u]);
}
