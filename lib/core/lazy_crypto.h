/* OpenSSL's libcrypto (release signatures, lib/update), opened on first
 * use (core/lazy.h). Include this instead of OpenSSL's headers; a symbol
 * banger starts to use goes into the list. */
#ifndef BANGER_CORE_LAZY_CRYPTO_H
#define BANGER_CORE_LAZY_CRYPTO_H

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "lazy.h"

#define BNG_CRYPTO_SYMBOLS(X) \
	X(BIO_free) \
	X(BIO_new_mem_buf) \
	X(EVP_DigestVerify) \
	X(EVP_DigestVerifyInit) \
	X(EVP_MD_CTX_free) \
	X(EVP_MD_CTX_new) \
	X(EVP_PKEY_free) \
	X(EVP_PKEY_get_utf8_string_param) \
	X(EVP_PKEY_is_a) \
	X(EVP_sha256) \
	X(PEM_read_bio_PUBKEY)

struct bng_crypto_syms {
	BNG_CRYPTO_SYMBOLS(BNG_LAZY_SLOT)
};

#define BNG_CRYPTO(sym) (*((struct bng_crypto_syms *)bng_lazy_table(&bng_lazy_crypto))->sym)
#define BIO_free BNG_CRYPTO(BIO_free)
#define BIO_new_mem_buf BNG_CRYPTO(BIO_new_mem_buf)
#define EVP_DigestVerify BNG_CRYPTO(EVP_DigestVerify)
#define EVP_DigestVerifyInit BNG_CRYPTO(EVP_DigestVerifyInit)
#define EVP_MD_CTX_free BNG_CRYPTO(EVP_MD_CTX_free)
#define EVP_MD_CTX_new BNG_CRYPTO(EVP_MD_CTX_new)
#define EVP_PKEY_free BNG_CRYPTO(EVP_PKEY_free)
#define EVP_PKEY_get_utf8_string_param BNG_CRYPTO(EVP_PKEY_get_utf8_string_param)
#define EVP_PKEY_is_a BNG_CRYPTO(EVP_PKEY_is_a)
#define EVP_sha256 BNG_CRYPTO(EVP_sha256)
#define PEM_read_bio_PUBKEY BNG_CRYPTO(PEM_read_bio_PUBKEY)

#endif
