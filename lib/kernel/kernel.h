/* Kernels for guests: import a Debian linux-image .deb or a directory into a
 * kernel directory, turn a bzImage into the ELF vmlinux Firecracker boots,
 * and generate the initramfs that loads the virtio modules a distro kernel
 * lacks and assembles the guest's root (optionally under an overlay).
 *
 * A kernel directory holds:
 *   vmlinuz        the bzImage (QEMU boots it; absent if only a vmlinux was given)
 *   vmlinux        the uncompressed ELF kernel (Firecracker boots it)
 *   initrd.img     the generated cpio, uncompressed (the agent as /init, busybox,
 *                  guest/init/init as /init.sh, the modules)
 *   modules/<ver>/ the whole modules tree (plain .ko) with a modules.dep
 *   config         the kernel's build config, when the source had one
 *   manifest.json  {kernel_version, source, created_at, sha256{...}, modules[...]}
 */
#ifndef BANGER_KERNEL_H
#define BANGER_KERNEL_H

#include "../core/op.h"

#include <stdbool.h>
#include <stdint.h>

#define BNG_KERNEL_VMLINUZ "vmlinuz"
#define BNG_KERNEL_VMLINUX "vmlinux"
#define BNG_KERNEL_INITRD "initrd.img"
#define BNG_KERNEL_MODULES "modules"
#define BNG_KERNEL_MANIFEST "manifest.json"

/* Imports a Debian linux-image-<ver> .deb (read with libarchive, no dpkg)
 * into dest_dir, which must not exist. Output is staged in a sibling
 * "<dest_dir>.tmp-XXXXXX" and renamed into place, so a failure or cancel
 * leaves nothing behind. Hostile members (absolute paths, "..", links
 * escaping the tree) fail the import. op may be NULL; manifest may be NULL,
 * else it receives the manifest (new reference). Progress events:
 * {stage: extract|vmlinux|depmod|initramfs|checksum|publish, done?, total?}. */
int bng_kernel_import_deb(const char *deb_path, const char *dest_dir, bng_op *op, json_t **manifest);

/* Same from a directory holding vmlinuz, bzImage, vmlinuz-<ver> or vmlinux,
 * and optionally modules/<ver>/, modules/ (a modules root itself) or
 * lib/modules/<ver>/. Compressed modules (.ko.xz/.zst/.gz) are unpacked. */
int bng_kernel_import_dir(const char *src_dir, const char *dest_dir, bng_op *op, json_t **manifest);

/* Writes the ELF kernel inside an x86 bzImage to out_elf (atomically):
 * reads the boot protocol header, unpacks the payload (gzip, xz, zstd, lzma,
 * bzip2 or lz4) and checks the ELF magic and the recorded size. An input that
 * is already an ELF vmlinux is copied. */
int bng_vmlinux_from_bzimage(const char *bzimage, const char *out_elf);

/* Builds an uncompressed cpio (newc) initramfs at out_path (atomically):
 * /bin/busybox and its applet links, /init (the static guest agent found by
 * bng_agent_binary, with the init script as /init.sh; the script itself
 * when there is no static agent or init_script is given), /dev/console, the mount points,
 * and the modules for virtio (mmio, pci, blk, net, console), vsock, overlay
 * and ext4 with their dependencies, in load order, under
 * /lib/modules/<kver>/, plus /etc/banger-modules ("name path" lines in load
 * order) for init. Modules built into the kernel (modules.builtin) or absent
 * from the tree are skipped, so modules_root may be NULL for kernels with
 * everything built in. Dependencies come from modules.dep, or from each
 * module's .modinfo when the tree has no modules.dep. busybox NULL finds a
 * static busybox (BANGER_BUSYBOX, /bin/busybox, /usr/bin/busybox,
 * /usr/lib/initramfs-tools/bin/busybox);
 * init_script NULL uses the built-in guest/init/init. loaded may be NULL,
 * else it receives the module names in load order (new reference). */
int bng_initramfs_build(const char *modules_root, const char *kver, const char *busybox, const char *init_script,
			const char *out_path, json_t **loaded);

/* Writes modules.dep and modules.softdep (depmod's formats) for the modules
 * under modules_root, computed from each module's .modinfo. */
int bng_kernel_depmod(const char *modules_root);

/* Rebuilds kernel_dir's initrd.img when it is one an older banger made (a
 * gzip cpio around the busybox script), from the directory's modules tree
 * for kver: kernels imported before keep booting, the faster way. *rebuilt
 * says whether it did. */
int bng_kernel_initramfs_refresh(const char *kernel_dir, const char *kver, bool *rebuilt);

/* Finds a statically linked busybox (see bng_initramfs_build); *out is
 * malloc'd. Fails with a message naming busybox-static if none is found. */
int bng_kernel_find_busybox(char **out);

/* The built-in guest init script (guest/init/init), NUL-terminated. */
const char *bng_kernel_init_script(size_t *len);

/* The modules the initramfs loads (before their dependencies are added). */
extern const char *const bng_initramfs_modules[];
extern const size_t bng_initramfs_modules_count;

/* ---- helpers shared inside lib/kernel ---- */

/* bng_vmlinux_from_bzimage reading path but naming it bzimage in errors
 * (imports name the package member, not their staging file). */
int bng_kernel_vmlinux(const char *path, const char *bzimage, const char *out_elf);

/* Unpacks a gzip/xz/zstd/lzma/bzip2/lz4 buffer with libarchive into a
 * malloc'd buffer (*out, *out_len), refusing output over max_out bytes.
 * what names the data in errors. */
int bng_kernel_unpack(const void *data, size_t len, size_t max_out, const char *what, void **out, size_t *out_len);
/* For a module file name: the length of its compression suffix (".xz" 3,
 * ".zst" 4, ".gz" 3), 0 for a plain ".ko", -1 if it is not a module. */
int bng_kernel_module_suffix(const char *name);
/* SHA-256 of a file as 64 lowercase hex characters. */
int bng_kernel_sha256_file(const char *path, char hex[65]);

#endif
