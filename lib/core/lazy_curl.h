/* libcurl, opened on first use (core/lazy.h). Include this instead of
 * the library's header; a symbol banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_CURL_H
#define BANGER_CORE_LAZY_CURL_H

#define CURL_DISABLE_TYPECHECK /* its checking macros would hide the table */
#include <curl/curl.h>
#include "lazy.h"

#define BNG_CURL_SYMBOLS(X) \
	X(curl_easy_cleanup) \
	X(curl_easy_escape) \
	X(curl_easy_getinfo) \
	X(curl_easy_init) \
	X(curl_easy_perform) \
	X(curl_easy_reset) \
	X(curl_easy_setopt) \
	X(curl_easy_strerror) \
	X(curl_free) \
	X(curl_global_init) \
	X(curl_slist_append) \
	X(curl_slist_free_all)

struct bng_curl_syms {
	BNG_CURL_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_CURL(sym) (*((struct bng_curl_syms *)bng_lazy_table(&bng_lazy_curl))->sym)
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_cleanup BNG_CURL(curl_easy_cleanup)
#define curl_easy_escape BNG_CURL(curl_easy_escape)
#define curl_easy_getinfo BNG_CURL(curl_easy_getinfo)
#define curl_easy_init BNG_CURL(curl_easy_init)
#define curl_easy_perform BNG_CURL(curl_easy_perform)
#define curl_easy_reset BNG_CURL(curl_easy_reset)
#define curl_easy_setopt BNG_CURL(curl_easy_setopt)
#define curl_easy_strerror BNG_CURL(curl_easy_strerror)
#define curl_free BNG_CURL(curl_free)
#define curl_global_init BNG_CURL(curl_global_init)
#define curl_slist_append BNG_CURL(curl_slist_append)
#define curl_slist_free_all BNG_CURL(curl_slist_free_all)

#endif
