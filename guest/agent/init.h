/* banger-agent --init: PID 1 for images without a usable init (init.c). */
#ifndef BANGER_AGENT_INIT_H
#define BANGER_AGENT_INIT_H

#include <stdbool.h>

/* Sets the machine up as an init would (mounts, hostname), starts the
 * image's sshd if it has one (*sshd says whether), then forks. Returns 0 in
 * the child, which goes on as the agent; PID 1 never returns: it reaps
 * orphans and starts the agent again whenever it exits. -1 when this
 * process is not PID 1. */
int init_boot(bool *sshd);

#endif
