/* SHA-256 of a file, for the kernel manifest (core/sha256.c does the hashing). */
#include "kernel.h"
#include "../core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int bng_kernel_sha256_file(const char *path, char hex[65])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return bng_err_errno(bng_code_from_errno(errno), errno, "cannot open %s", path);
	bng_sha256 c;
	bng_sha256_init(&c);
	unsigned char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		bng_sha256_update(&c, buf, (size_t)n);
	int e = errno;
	close(fd);
	if (n < 0)
		return bng_err_errno(BANGER_EIO, e, "cannot read %s", path);
	uint8_t d[BNG_SHA256_LEN];
	bng_sha256_final(&c, d);
	bng_sha256_hex(d, hex);
	return 0;
}
