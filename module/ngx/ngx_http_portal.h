/*
 * What the two halves of the nginx glue share: the host side (ngx_http_portal_module.c)
 * and the TLS side (ngx_http_portal_ssl.c).
 */

#ifndef _NGX_HTTP_PORTAL_H_INCLUDED_
#define _NGX_HTTP_PORTAL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "portal_core.h"


/* a failed open of the snapshot or the state store is retried at most this often */
#define NGX_HTTP_PORTAL_REOPEN_DELAY     1

#define NGX_HTTP_PORTAL_CACHE            131072
#define NGX_HTTP_PORTAL_SSL_CACHE        1000

#define NGX_HTTP_PORTAL_SSL_FALLBACK     0
#define NGX_HTTP_PORTAL_SSL_REJECT       1


/*
 * Lookups since nginx started, in shared memory: portal_requests_total of portal_status.
 * One slot per worker number, each on its own cache line, so that workers on different cores
 * never write the same line; a worker of the old generation during a reload shares its
 * number's slot with the new one, hence the atomic adds.
 */
#define NGX_HTTP_PORTAL_COUNTER_SLOTS    64

typedef struct {
    ngx_atomic_t               hit;
    ngx_atomic_t               miss;
    u_char                     pad[NGX_CPU_CACHE_LINE - 2 * sizeof(ngx_atomic_t)];
} ngx_http_portal_counters_t;


typedef struct {
    ngx_str_t                  data;            /* portal_data, with a trailing NUL */
    ngx_http_portal_counters_t *counters;       /* shared: NGX_HTTP_PORTAL_COUNTER_SLOTS */
    portal_reader_t           *reader;          /* per worker, opened after fork */
    time_t                     reopen_at;
    ngx_uint_t                 cache;           /* portal_cache */
    portal_certs_t            *certs;           /* per worker, if ssl_used */
    time_t                     certs_reopen_at;
    ngx_uint_t                 ssl_cache;       /* portal_ssl_cache */
    ngx_uint_t                 ssl_used;        /* some server has "portal_ssl on" */
    ngx_uint_t                 state_checked;   /* nginx -t looked at state/ */
} ngx_http_portal_main_conf_t;


typedef struct {
    ngx_flag_t                 ssl;             /* portal_ssl */
    ngx_uint_t                 ssl_unknown;     /* portal_ssl_unknown */
    u_char                    *ssl_file;        /* where "portal_ssl on" was set */
    ngx_uint_t                 ssl_line;
} ngx_http_portal_srv_conf_t;


/* the core library's allocator: the request's pool */
void *ngx_http_portal_alloc(void *pool, size_t size);

ngx_int_t ngx_http_portal_acme_init_process(ngx_cycle_t *cycle);

ngx_int_t ngx_http_portal_check_store(ngx_conf_t *cf,
    ngx_http_portal_main_conf_t *pmcf, const char *store);


#if (NGX_HTTP_SSL)

ngx_int_t ngx_http_portal_ssl_check_listen(ngx_conf_t *cf);
char *ngx_http_portal_ssl_merge(ngx_conf_t *cf, ngx_http_portal_srv_conf_t *pscf);
portal_certs_t *ngx_http_portal_ssl_certs(ngx_http_portal_main_conf_t *pmcf,
    ngx_log_t *log);
ngx_uint_t ngx_http_portal_ssl_sni_differs(ngx_http_request_t *r, ngx_str_t *host);

#endif


extern ngx_module_t  ngx_http_portal_module;


#endif /* _NGX_HTTP_PORTAL_H_INCLUDED_ */
