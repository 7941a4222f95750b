/*
 * The ACME engine and the HTTP-01 responder as the nginx glue sees them: plain C, every
 * function noexcept on the C++ side. The engine is a thread of one worker (the one holding
 * the data directory's ACME lock); it calls no nginx API: its log lines wait in a queue the
 * worker drains on its own event loop.
 */
#ifndef PORTAL_ACME_H
#define PORTAL_ACME_H

#include "portal_core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char   *data_dir;
    const char   *directory;          /* portal_acme_directory */
    const char  **contact;            /* portal_acme_contact */
    size_t        ncontact;
    const char   *ca_file;            /* portal_acme_ca_certificate, NULL: system trust */
    const char   *key_type;           /* "ecdsa-p256", "rsa-2048", ... */
    const char   *cname_target;       /* NULL: none */
    const char  **edge_addresses;
    size_t        nedge_addresses;
    const char   *resolver;           /* "127.0.0.1:8053"; NULL: the system's */
    const long   *backoff;            /* seconds, after failures 1, 2, 3, 4+ */
    size_t        nbackoff;
    long          dns_recheck;        /* seconds */
    int           concurrency;        /* orders in flight at once */
    const char   *preferred_chain;    /* NULL: the CA's default */
    const char   *profile;            /* NULL: none */
    const char   *eab_kid;            /* NULL: no external account binding */
    const char   *eab_key_file;
} portal_acme_conf_t;

typedef struct portal_acme_s   portal_acme_t;
typedef struct portal_state_s  portal_state_t;

enum {
    PORTAL_LOG_ERR = 0,
    PORTAL_LOG_WARN,
    PORTAL_LOG_NOTICE,
    PORTAL_LOG_INFO,
    PORTAL_LOG_DEBUG
};

typedef void (*portal_log_pt)(void *ctx, int level, const char *line, size_t len);

/* Everything the engine would refuse (nginx -t): 0 ok, -1 and err. Opens no store. */
int portal_acme_check(const portal_acme_conf_t *conf, char *err, size_t errlen)
    PORTAL_NOEXCEPT;

/* In a worker, after fork, before any other store of DIR is opened: the engine (not yet
 * running). where names the process in log lines. NULL and err on failure. */
portal_acme_t *portal_acme_create(const portal_acme_conf_t *conf, const char *where,
    char *err, size_t errlen) PORTAL_NOEXCEPT;

/* Takes the ACME lock if free and starts the engine's thread (all signals blocked in it):
 * 1 running, 0 another process holds the lock, -1 error (err). */
int portal_acme_try_start(portal_acme_t *a, char *err, size_t errlen) PORTAL_NOEXCEPT;

/* Asks the engine to stop without waiting (a worker that is shutting down gracefully): 1
 * once its thread has ended, its lock is released and the next engine may start elsewhere;
 * 0 while it is still winding down. Call again until 1. */
int portal_acme_wind_down(portal_acme_t *a) PORTAL_NOEXCEPT;

/* Hands the queued log lines to fn, on the caller's thread. */
void portal_acme_drain_log(portal_acme_t *a, portal_log_pt fn, void *ctx) PORTAL_NOEXCEPT;

/* Stops the thread (an order in progress is left to resume), joins it, hands the last log
 * lines to fn, frees everything. */
void portal_acme_destroy(portal_acme_t *a, portal_log_pt fn, void *ctx) PORTAL_NOEXCEPT;

/* The state store, read-only, for the HTTP-01 responder (after fork). */
portal_state_t *portal_state_open(const char *dir, char *err, size_t errlen) PORTAL_NOEXCEPT;
void portal_state_close(portal_state_t *s) PORTAL_NOEXCEPT;

/* Whether token is a well-formed HTTP-01 token (base64url, at most 256 bytes). */
int portal_acme_token_valid(const char *token, size_t len) PORTAL_NOEXCEPT;

/* The key authorization published for token: PORTAL_FOUND with a copy made through alloc,
 * PORTAL_NOT_FOUND, or PORTAL_ERROR and err. */
portal_rc_t portal_acme_challenge(portal_state_t *s, const char *token, size_t len,
    portal_alloc_pt alloc, void *alloc_ctx, portal_str_t *out, char *err, size_t errlen)
    PORTAL_NOEXCEPT;

/* portal_status: readers of the snapshot and the state store for one worker (after fork). */
typedef struct portal_status_s  portal_status_t;

portal_status_t *portal_status_open(const char *dir, char *err, size_t errlen)
    PORTAL_NOEXCEPT;
void portal_status_close(portal_status_t *s) PORTAL_NOEXCEPT;

/* The status of every portal domain, the engine and the snapshot: JSON, or with prometheus
 * set the Prometheus text (with the request counts when requests is set). Copied through
 * alloc; 0 ok, -1 and err. */
int portal_status_render(portal_status_t *s, int prometheus, const unsigned long long *requests,
    portal_alloc_pt alloc, void *alloc_ctx, portal_str_t *out, char *err, size_t errlen)
    PORTAL_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* PORTAL_ACME_H */
