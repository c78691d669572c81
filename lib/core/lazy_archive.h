/* libarchive, opened on first use (core/lazy.h). Include this instead of
 * the library's header; a symbol banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_ARCHIVE_H
#define BANGER_CORE_LAZY_ARCHIVE_H

#include <archive.h>
#include <archive_entry.h>

#include "lazy.h"

#define BNG_ARCHIVE_SYMBOLS(X) \
	X(archive_entry_clear) \
	X(archive_entry_filetype) \
	X(archive_entry_free) \
	X(archive_entry_gid) \
	X(archive_entry_hardlink) \
	X(archive_entry_mode) \
	X(archive_entry_mtime) \
	X(archive_entry_new) \
	X(archive_entry_pathname) \
	X(archive_entry_perm) \
	X(archive_entry_rdev) \
	X(archive_entry_set_gid) \
	X(archive_entry_set_hardlink) \
	X(archive_entry_set_ino64) \
	X(archive_entry_set_mode) \
	X(archive_entry_set_mtime) \
	X(archive_entry_set_nlink) \
	X(archive_entry_set_pathname) \
	X(archive_entry_set_rdevmajor) \
	X(archive_entry_set_rdevminor) \
	X(archive_entry_set_size) \
	X(archive_entry_set_symlink) \
	X(archive_entry_set_uid) \
	X(archive_entry_size) \
	X(archive_entry_size_is_set) \
	X(archive_entry_sourcepath) \
	X(archive_entry_sparse_count) \
	X(archive_entry_symlink) \
	X(archive_entry_uid) \
	X(archive_entry_xattr_next) \
	X(archive_entry_xattr_reset) \
	X(archive_errno) \
	X(archive_error_string) \
	X(archive_filter_bytes) \
	X(archive_filter_count) \
	X(archive_read_data) \
	X(archive_read_data_block) \
	X(archive_read_disk_descend) \
	X(archive_read_disk_new) \
	X(archive_read_disk_open) \
	X(archive_read_disk_set_standard_lookup) \
	X(archive_read_disk_set_symlink_physical) \
	X(archive_read_free) \
	X(archive_read_new) \
	X(archive_read_next_header) \
	X(archive_read_next_header2) \
	X(archive_read_open) \
	X(archive_read_open_fd) \
	X(archive_read_open_filename) \
	X(archive_read_open_memory) \
	X(archive_read_support_filter_all) \
	X(archive_read_support_filter_by_code) \
	X(archive_read_support_format_ar) \
	X(archive_read_support_format_gnutar) \
	X(archive_read_support_format_raw) \
	X(archive_read_support_format_tar) \
	X(archive_set_error) \
	X(archive_write_add_filter_gzip) \
	X(archive_write_close) \
	X(archive_write_data) \
	X(archive_write_data_block) \
	X(archive_write_disk_new) \
	X(archive_write_disk_set_options) \
	X(archive_write_disk_set_standard_lookup) \
	X(archive_write_finish_entry) \
	X(archive_write_free) \
	X(archive_write_header) \
	X(archive_write_new) \
	X(archive_write_open) \
	X(archive_write_open_fd) \
	X(archive_write_set_bytes_in_last_block) \
	X(archive_write_set_filter_option) \
	X(archive_write_set_format_cpio_newc) \
	X(archive_write_set_format_pax_restricted) \
	X(archive_write_set_options)

struct bng_archive_syms {
	BNG_ARCHIVE_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_ARCHIVE(sym) (*((struct bng_archive_syms *)bng_lazy_table(&bng_lazy_archive))->sym)
#define archive_entry_clear BNG_ARCHIVE(archive_entry_clear)
#define archive_entry_filetype BNG_ARCHIVE(archive_entry_filetype)
#define archive_entry_free BNG_ARCHIVE(archive_entry_free)
#define archive_entry_gid BNG_ARCHIVE(archive_entry_gid)
#define archive_entry_hardlink BNG_ARCHIVE(archive_entry_hardlink)
#define archive_entry_mode BNG_ARCHIVE(archive_entry_mode)
#define archive_entry_mtime BNG_ARCHIVE(archive_entry_mtime)
#define archive_entry_new BNG_ARCHIVE(archive_entry_new)
#define archive_entry_pathname BNG_ARCHIVE(archive_entry_pathname)
#define archive_entry_perm BNG_ARCHIVE(archive_entry_perm)
#define archive_entry_rdev BNG_ARCHIVE(archive_entry_rdev)
#define archive_entry_set_gid BNG_ARCHIVE(archive_entry_set_gid)
#define archive_entry_set_hardlink BNG_ARCHIVE(archive_entry_set_hardlink)
#define archive_entry_set_ino64 BNG_ARCHIVE(archive_entry_set_ino64)
#define archive_entry_set_mode BNG_ARCHIVE(archive_entry_set_mode)
#define archive_entry_set_mtime BNG_ARCHIVE(archive_entry_set_mtime)
#define archive_entry_set_nlink BNG_ARCHIVE(archive_entry_set_nlink)
#define archive_entry_set_pathname BNG_ARCHIVE(archive_entry_set_pathname)
#define archive_entry_set_rdevmajor BNG_ARCHIVE(archive_entry_set_rdevmajor)
#define archive_entry_set_rdevminor BNG_ARCHIVE(archive_entry_set_rdevminor)
#define archive_entry_set_size BNG_ARCHIVE(archive_entry_set_size)
#define archive_entry_set_symlink BNG_ARCHIVE(archive_entry_set_symlink)
#define archive_entry_set_uid BNG_ARCHIVE(archive_entry_set_uid)
#define archive_entry_size BNG_ARCHIVE(archive_entry_size)
#define archive_entry_size_is_set BNG_ARCHIVE(archive_entry_size_is_set)
#define archive_entry_sourcepath BNG_ARCHIVE(archive_entry_sourcepath)
#define archive_entry_sparse_count BNG_ARCHIVE(archive_entry_sparse_count)
#define archive_entry_symlink BNG_ARCHIVE(archive_entry_symlink)
#define archive_entry_uid BNG_ARCHIVE(archive_entry_uid)
#define archive_entry_xattr_next BNG_ARCHIVE(archive_entry_xattr_next)
#define archive_entry_xattr_reset BNG_ARCHIVE(archive_entry_xattr_reset)
#define archive_errno BNG_ARCHIVE(archive_errno)
#define archive_error_string BNG_ARCHIVE(archive_error_string)
#define archive_filter_bytes BNG_ARCHIVE(archive_filter_bytes)
#define archive_filter_count BNG_ARCHIVE(archive_filter_count)
#define archive_read_data BNG_ARCHIVE(archive_read_data)
#define archive_read_data_block BNG_ARCHIVE(archive_read_data_block)
#define archive_read_disk_descend BNG_ARCHIVE(archive_read_disk_descend)
#define archive_read_disk_new BNG_ARCHIVE(archive_read_disk_new)
#define archive_read_disk_open BNG_ARCHIVE(archive_read_disk_open)
#define archive_read_disk_set_standard_lookup BNG_ARCHIVE(archive_read_disk_set_standard_lookup)
#define archive_read_disk_set_symlink_physical BNG_ARCHIVE(archive_read_disk_set_symlink_physical)
#define archive_read_free BNG_ARCHIVE(archive_read_free)
#define archive_read_new BNG_ARCHIVE(archive_read_new)
#define archive_read_next_header BNG_ARCHIVE(archive_read_next_header)
#define archive_read_next_header2 BNG_ARCHIVE(archive_read_next_header2)
#define archive_read_open BNG_ARCHIVE(archive_read_open)
#define archive_read_open_fd BNG_ARCHIVE(archive_read_open_fd)
#define archive_read_open_filename BNG_ARCHIVE(archive_read_open_filename)
#define archive_read_open_memory BNG_ARCHIVE(archive_read_open_memory)
#define archive_read_support_filter_all BNG_ARCHIVE(archive_read_support_filter_all)
#define archive_read_support_filter_by_code BNG_ARCHIVE(archive_read_support_filter_by_code)
#define archive_read_support_format_ar BNG_ARCHIVE(archive_read_support_format_ar)
#define archive_read_support_format_gnutar BNG_ARCHIVE(archive_read_support_format_gnutar)
#define archive_read_support_format_raw BNG_ARCHIVE(archive_read_support_format_raw)
#define archive_read_support_format_tar BNG_ARCHIVE(archive_read_support_format_tar)
#define archive_set_error BNG_ARCHIVE(archive_set_error)
#define archive_write_add_filter_gzip BNG_ARCHIVE(archive_write_add_filter_gzip)
#define archive_write_close BNG_ARCHIVE(archive_write_close)
#define archive_write_data BNG_ARCHIVE(archive_write_data)
#define archive_write_data_block BNG_ARCHIVE(archive_write_data_block)
#define archive_write_disk_new BNG_ARCHIVE(archive_write_disk_new)
#define archive_write_disk_set_options BNG_ARCHIVE(archive_write_disk_set_options)
#define archive_write_disk_set_standard_lookup BNG_ARCHIVE(archive_write_disk_set_standard_lookup)
#define archive_write_finish_entry BNG_ARCHIVE(archive_write_finish_entry)
#define archive_write_free BNG_ARCHIVE(archive_write_free)
#define archive_write_header BNG_ARCHIVE(archive_write_header)
#define archive_write_new BNG_ARCHIVE(archive_write_new)
#define archive_write_open BNG_ARCHIVE(archive_write_open)
#define archive_write_open_fd BNG_ARCHIVE(archive_write_open_fd)
#define archive_write_set_bytes_in_last_block BNG_ARCHIVE(archive_write_set_bytes_in_last_block)
#define archive_write_set_filter_option BNG_ARCHIVE(archive_write_set_filter_option)
#define archive_write_set_format_cpio_newc BNG_ARCHIVE(archive_write_set_format_cpio_newc)
#define archive_write_set_format_pax_restricted BNG_ARCHIVE(archive_write_set_format_pax_restricted)
#define archive_write_set_options BNG_ARCHIVE(archive_write_set_options)

#endif
