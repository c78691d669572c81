/* libext2fs (and its libcom_err), opened on first use (core/lazy.h). Include this instead of
 * the library's header; a symbol banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_EXT2FS_H
#define BANGER_CORE_LAZY_EXT2FS_H

#include <et/com_err.h>
#include <ext2fs/ext2fs.h>
#include "lazy.h"

#define BNG_EXT2FS_SYMBOLS(X) \
	X(add_error_table) \
	X(error_message) \
	X(et_ext2_error_table) \
	X(ext2fs_add_journal_inode3) \
	X(ext2fs_allocate_tables) \
	X(ext2fs_bg_flags_set) \
	X(ext2fs_blocks_count) \
	X(ext2fs_blocks_count_set) \
	X(ext2fs_close_free) \
	X(ext2fs_dir_iterate) \
	X(ext2fs_expand_dir) \
	X(ext2fs_extent_free) \
	X(ext2fs_extent_open2) \
	X(ext2fs_file_close) \
	X(ext2fs_file_llseek) \
	X(ext2fs_file_open) \
	X(ext2fs_file_open2) \
	X(ext2fs_file_read) \
	X(ext2fs_file_set_size2) \
	X(ext2fs_file_write) \
	X(ext2fs_free) \
	X(ext2fs_free_ext_attr) \
	X(ext2fs_get_journal_params) \
	X(ext2fs_group_desc_csum_set) \
	X(ext2fs_init_csum_seed) \
	X(ext2fs_initialize) \
	X(ext2fs_inode_alloc_stats2) \
	X(ext2fs_inode_has_valid_blocks2) \
	X(ext2fs_is_fast_symlink) \
	X(ext2fs_link) \
	X(ext2fs_lookup) \
	X(ext2fs_mark_generic_bmap) \
	X(ext2fs_mkdir) \
	X(ext2fs_new_inode) \
	X(ext2fs_open2) \
	X(ext2fs_punch) \
	X(ext2fs_read_bitmaps) \
	X(ext2fs_read_inode) \
	X(ext2fs_read_inode_full) \
	X(ext2fs_symlink) \
	X(ext2fs_unlink) \
	X(ext2fs_update_bb_inode) \
	X(ext2fs_write_inode) \
	X(ext2fs_write_inode_full) \
	X(ext2fs_write_new_inode) \
	X(ext2fs_xattr_get) \
	X(ext2fs_xattr_set) \
	X(ext2fs_xattrs_close) \
	X(ext2fs_xattrs_count) \
	X(ext2fs_xattrs_open) \
	X(ext2fs_xattrs_read) \
	X(unix_io_manager)

struct bng_ext2fs_syms {
	BNG_EXT2FS_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_EXT2FS(sym) (*((struct bng_ext2fs_syms *)bng_lazy_table(&bng_lazy_ext2fs))->sym)
#define add_error_table BNG_EXT2FS(add_error_table)
#define error_message BNG_EXT2FS(error_message)
#define et_ext2_error_table BNG_EXT2FS(et_ext2_error_table)
#define ext2fs_add_journal_inode3 BNG_EXT2FS(ext2fs_add_journal_inode3)
#define ext2fs_allocate_tables BNG_EXT2FS(ext2fs_allocate_tables)
#define ext2fs_bg_flags_set BNG_EXT2FS(ext2fs_bg_flags_set)
#define ext2fs_blocks_count BNG_EXT2FS(ext2fs_blocks_count)
#define ext2fs_blocks_count_set BNG_EXT2FS(ext2fs_blocks_count_set)
#define ext2fs_close_free BNG_EXT2FS(ext2fs_close_free)
#define ext2fs_dir_iterate BNG_EXT2FS(ext2fs_dir_iterate)
#define ext2fs_expand_dir BNG_EXT2FS(ext2fs_expand_dir)
#define ext2fs_extent_free BNG_EXT2FS(ext2fs_extent_free)
#define ext2fs_extent_open2 BNG_EXT2FS(ext2fs_extent_open2)
#define ext2fs_file_close BNG_EXT2FS(ext2fs_file_close)
#define ext2fs_file_llseek BNG_EXT2FS(ext2fs_file_llseek)
#define ext2fs_file_open BNG_EXT2FS(ext2fs_file_open)
#define ext2fs_file_open2 BNG_EXT2FS(ext2fs_file_open2)
#define ext2fs_file_read BNG_EXT2FS(ext2fs_file_read)
#define ext2fs_file_set_size2 BNG_EXT2FS(ext2fs_file_set_size2)
#define ext2fs_file_write BNG_EXT2FS(ext2fs_file_write)
#define ext2fs_free BNG_EXT2FS(ext2fs_free)
#define ext2fs_free_ext_attr BNG_EXT2FS(ext2fs_free_ext_attr)
#define ext2fs_get_journal_params BNG_EXT2FS(ext2fs_get_journal_params)
#define ext2fs_group_desc_csum_set BNG_EXT2FS(ext2fs_group_desc_csum_set)
#define ext2fs_init_csum_seed BNG_EXT2FS(ext2fs_init_csum_seed)
#define ext2fs_initialize BNG_EXT2FS(ext2fs_initialize)
#define ext2fs_inode_alloc_stats2 BNG_EXT2FS(ext2fs_inode_alloc_stats2)
#define ext2fs_inode_has_valid_blocks2 BNG_EXT2FS(ext2fs_inode_has_valid_blocks2)
#define ext2fs_is_fast_symlink BNG_EXT2FS(ext2fs_is_fast_symlink)
#define ext2fs_link BNG_EXT2FS(ext2fs_link)
#define ext2fs_lookup BNG_EXT2FS(ext2fs_lookup)
#define ext2fs_mark_generic_bmap BNG_EXT2FS(ext2fs_mark_generic_bmap)
#define ext2fs_mkdir BNG_EXT2FS(ext2fs_mkdir)
#define ext2fs_new_inode BNG_EXT2FS(ext2fs_new_inode)
#define ext2fs_open2 BNG_EXT2FS(ext2fs_open2)
#define ext2fs_punch BNG_EXT2FS(ext2fs_punch)
#define ext2fs_read_bitmaps BNG_EXT2FS(ext2fs_read_bitmaps)
#define ext2fs_read_inode BNG_EXT2FS(ext2fs_read_inode)
#define ext2fs_read_inode_full BNG_EXT2FS(ext2fs_read_inode_full)
#define ext2fs_symlink BNG_EXT2FS(ext2fs_symlink)
#define ext2fs_unlink BNG_EXT2FS(ext2fs_unlink)
#define ext2fs_update_bb_inode BNG_EXT2FS(ext2fs_update_bb_inode)
#define ext2fs_write_inode BNG_EXT2FS(ext2fs_write_inode)
#define ext2fs_write_inode_full BNG_EXT2FS(ext2fs_write_inode_full)
#define ext2fs_write_new_inode BNG_EXT2FS(ext2fs_write_new_inode)
#define ext2fs_xattr_get BNG_EXT2FS(ext2fs_xattr_get)
#define ext2fs_xattr_set BNG_EXT2FS(ext2fs_xattr_set)
#define ext2fs_xattrs_close BNG_EXT2FS(ext2fs_xattrs_close)
#define ext2fs_xattrs_count BNG_EXT2FS(ext2fs_xattrs_count)
#define ext2fs_xattrs_open BNG_EXT2FS(ext2fs_xattrs_open)
#define ext2fs_xattrs_read BNG_EXT2FS(ext2fs_xattrs_read)
#define unix_io_manager BNG_EXT2FS(unix_io_manager)

#endif
