/* banger-agent as the initramfs's /init (initramfs.c). */
#ifndef BANGER_AGENT_INITRAMFS_H
#define BANGER_AGENT_INITRAMFS_H

#include <stddef.h>

/* Mounts the VM's root, loads the initramfs's modules, sets eth0 up and
 * switches to the root's init. Never returns: it execs the next init (or
 * /init.sh, the busybox script, for what it leaves to it) or powers off. */
int initramfs_main(void);

/* Splits a kernel command line in place, as the kernel does: words
 * between spaces, double quotes grouping and removed. Returns the count
 * (at most max). */
size_t initramfs_split_cmdline(char *line, char **argv, size_t max);

/* Splits banger.init= in place as sh would split a plain command: single
 * and double quotes, backslash escapes. Returns the count, or -1 for an
 * unterminated quote or more than max - 1 words (argv is NULL-terminated). */
int initramfs_split_words(char *s, char **argv, size_t max);

#endif
