/*
 * The core library as the nginx glue sees it: plain C, and every function noexcept on the
 * C++ side (no exception ever crosses this header). Nothing returned points into LMDB:
 * strings are copied through the caller's allocator (nginx: r->pool) before the read
 * transaction ends.
 */
#ifndef PORTAL_CORE_H
#define PORTAL_CORE_H

#include <stddef.h>

#ifdef __cplusplus
#define PORTAL_NOEXCEPT  noexcept
extern "C" {
#else
#define PORTAL_NOEXCEPT
#endif

#define PORTAL_MAX_HOST_LEN  253
#define PORTAL_ERRLEN        512

typedef struct {
    size_t        len;
    const char   *data;
} portal_str_t;

typedef void *(*portal_alloc_pt)(void *ctx, size_t size);

typedef struct {
    portal_str_t   host;
    portal_str_t   brand;
    portal_str_t   customer_limit;   /* "100.00" */
    portal_str_t   access;           /* "balance,cdr": sorted, comma-separated */
    portal_str_t   status;           /* "active" | "suspended" */
    portal_str_t  *sections;         /* the same names, one by one, sorted */
    size_t         nsections;
    unsigned       customer_signup:1;
    unsigned       carrier_signup:1;
    unsigned       suspended:1;
} portal_domain_t;

typedef enum {
    PORTAL_ERROR = -1,      /* err says why (an LMDB failure, no memory) */
    PORTAL_FOUND = 0,
    PORTAL_NOT_FOUND = 1,
    PORTAL_MALFORMED = 2    /* a record that does not decode: treat as absent;
                               err is set only the first time for this host */
} portal_rc_t;

typedef struct portal_reader_s  portal_reader_t;

typedef enum {
    PORTAL_HOST_OK = 0,
    PORTAL_HOST_BAD_PORT,   /* "a.example:99999": not a valid authority at all */
    PORTAL_HOST_INVALID     /* a name that cannot be a portal domain */
} portal_host_rc_t;

/* Canonical request host (lower-case, no trailing dot, no port, LDH): writes at most
 * PORTAL_MAX_HOST_LEN bytes to out and its length to out_len. */
portal_host_rc_t portal_host_canonical(const char *in, size_t len, char *out,
    size_t *out_len) PORTAL_NOEXCEPT;

/* Valid access section name: [a-z0-9_]{1,32}. */
int portal_section_valid(const char *name, size_t len) PORTAL_NOEXCEPT;

/* nginx -t's check of DIR/STORE ("snapshot", "state"): that its data file is not empty nor
 * shorter than the data its meta pages count. Opens nothing for good and writes nothing (no
 * lock file either). 0, or -1 and err. */
int portal_store_check(const char *dir, const char *store, char *err, size_t errlen)
    PORTAL_NOEXCEPT;

/* Opens DIR/snapshot read-only for this process (call after fork), with a memo of at most
 * cache_size looked-up hosts (0: none), emptied by every commit. NULL and err on failure. */
portal_reader_t *portal_reader_open(const char *dir, size_t cache_size, char *err,
    size_t errlen) PORTAL_NOEXCEPT;
void portal_reader_close(portal_reader_t *r) PORTAL_NOEXCEPT;

/* Looks a canonical host up; on PORTAL_FOUND fills out with copies made through alloc. */
portal_rc_t portal_reader_lookup(portal_reader_t *r, const char *host, size_t len,
    portal_alloc_pt alloc, void *alloc_ctx, portal_domain_t *out, char *err, size_t errlen)
    PORTAL_NOEXCEPT;

typedef enum {
    PORTAL_CERT_ERROR = -1,     /* err says why; the connection is unchanged */
    PORTAL_CERT_USED = 0,       /* the name's certificates are on the connection */
    PORTAL_CERT_NONE = 1,       /* no certificate for the name: unchanged (fallback) */
    PORTAL_CERT_MALFORMED = 2   /* a record that does not parse: unchanged; err is set
                                   only the first time for this name and generation */
} portal_cert_rc_t;

typedef struct portal_certs_s  portal_certs_t;

/* Opens DIR/state read-only for this process (after fork), with an LRU cache of at most
 * cache_size parsed names. NULL and err on failure. */
portal_certs_t *portal_certs_open(const char *dir, size_t cache_size, char *err,
    size_t errlen) PORTAL_NOEXCEPT;
void portal_certs_close(portal_certs_t *c) PORTAL_NOEXCEPT;

/* In the certificate callback: puts host's (canonical) certificates on ssl, an SSL *. */
portal_cert_rc_t portal_certs_use(portal_certs_t *c, void *ssl, const char *host,
    size_t len, char *err, size_t errlen) PORTAL_NOEXCEPT;

/* Whether host has a certificate: 1 yes, 0 no, -1 error (err says why). */
int portal_certs_has(portal_certs_t *c, const char *host, size_t len, char *err,
    size_t errlen) PORTAL_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* PORTAL_CORE_H */
