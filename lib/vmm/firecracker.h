/* The Firecracker driver (firecracker.c): REST over the API Unix socket,
 * hybrid vsock for the guest agent, the jailer when asked for as root. */
#ifndef BANGER_VMM_FIRECRACKER_H
#define BANGER_VMM_FIRECRACKER_H

#include "vmm.h"

extern const bng_vmm_driver bng_vmm_firecracker;

/* Jailed, the jailer makes device nodes in the jail and runs a copy of
 * firecracker from it: BANGER_EUNSUPPORTED, naming the mount and what to do,
 * when the filesystem that holds (or will hold) dir is mounted nodev or
 * noexec. Checked at every jailed start, and by `doctor`. */
int bng_firecracker_check_jail_fs(const char *dir);

#endif
