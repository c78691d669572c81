/* The Firecracker driver (firecracker.c): REST over the API Unix socket,
 * hybrid vsock for the guest agent, the jailer when asked for as root. */
#ifndef BANGER_VMM_FIRECRACKER_H
#define BANGER_VMM_FIRECRACKER_H

#include "vmm.h"

extern const bng_vmm_driver bng_vmm_firecracker;

#endif
