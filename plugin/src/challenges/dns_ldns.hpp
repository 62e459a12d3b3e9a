#pragma once
// ldns's headers, made to compile as C++ against OpenSSL 3 without deprecated APIs:
// - ldns/common.h defines bool, true and false as macros unless <stdbool.h> came first;
// - ldns/keys.h and ldns/dnssec_sign.h declare RSA and DSA functions whose types OpenSSL hides
//   under OPENSSL_NO_DEPRECATED. brokertls never calls those; naming the opaque types suffices.

#include <openssl/types.h>
#include <stdbool.h>

#ifdef OPENSSL_NO_DEPRECATED_3_0
typedef struct rsa_st RSA;
typedef struct dsa_st DSA;
#endif

#include <ldns/ldns.h>
