/* libssh2, opened on first use (core/lazy.h). Include this instead of
 * the library's header; a symbol banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_SSH2_H
#define BANGER_CORE_LAZY_SSH2_H

#include <libssh2.h>
#include "lazy.h"

#define BNG_SSH2_SYMBOLS(X) \
	X(libssh2_channel_close) \
	X(libssh2_channel_eof) \
	X(libssh2_channel_free) \
	X(libssh2_channel_get_exit_signal) \
	X(libssh2_channel_get_exit_status) \
	X(libssh2_channel_open_ex) \
	X(libssh2_channel_process_startup) \
	X(libssh2_channel_read_ex) \
	X(libssh2_channel_send_eof) \
	X(libssh2_channel_wait_closed) \
	X(libssh2_channel_write_ex) \
	X(libssh2_free) \
	X(libssh2_init) \
	X(libssh2_session_disconnect_ex) \
	X(libssh2_session_free) \
	X(libssh2_session_handshake) \
	X(libssh2_session_hostkey) \
	X(libssh2_session_init_ex) \
	X(libssh2_session_last_error) \
	X(libssh2_session_method_pref) \
	X(libssh2_session_set_blocking) \
	X(libssh2_session_set_timeout) \
	X(libssh2_userauth_publickey_fromfile_ex)

struct bng_ssh2_syms {
	BNG_SSH2_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_SSH2(sym) (*((struct bng_ssh2_syms *)bng_lazy_table(&bng_lazy_ssh2))->sym)
#define libssh2_channel_close BNG_SSH2(libssh2_channel_close)
#define libssh2_channel_eof BNG_SSH2(libssh2_channel_eof)
#define libssh2_channel_free BNG_SSH2(libssh2_channel_free)
#define libssh2_channel_get_exit_signal BNG_SSH2(libssh2_channel_get_exit_signal)
#define libssh2_channel_get_exit_status BNG_SSH2(libssh2_channel_get_exit_status)
#define libssh2_channel_open_ex BNG_SSH2(libssh2_channel_open_ex)
#define libssh2_channel_process_startup BNG_SSH2(libssh2_channel_process_startup)
#define libssh2_channel_read_ex BNG_SSH2(libssh2_channel_read_ex)
#define libssh2_channel_send_eof BNG_SSH2(libssh2_channel_send_eof)
#define libssh2_channel_wait_closed BNG_SSH2(libssh2_channel_wait_closed)
#define libssh2_channel_write_ex BNG_SSH2(libssh2_channel_write_ex)
#define libssh2_free BNG_SSH2(libssh2_free)
#define libssh2_init BNG_SSH2(libssh2_init)
#define libssh2_session_disconnect_ex BNG_SSH2(libssh2_session_disconnect_ex)
#define libssh2_session_free BNG_SSH2(libssh2_session_free)
#define libssh2_session_handshake BNG_SSH2(libssh2_session_handshake)
#define libssh2_session_hostkey BNG_SSH2(libssh2_session_hostkey)
#define libssh2_session_init_ex BNG_SSH2(libssh2_session_init_ex)
#define libssh2_session_last_error BNG_SSH2(libssh2_session_last_error)
#define libssh2_session_method_pref BNG_SSH2(libssh2_session_method_pref)
#define libssh2_session_set_blocking BNG_SSH2(libssh2_session_set_blocking)
#define libssh2_session_set_timeout BNG_SSH2(libssh2_session_set_timeout)
#define libssh2_userauth_publickey_fromfile_ex BNG_SSH2(libssh2_userauth_publickey_fromfile_ex)

#endif
