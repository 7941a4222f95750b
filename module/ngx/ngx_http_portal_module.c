/*
 * ngx_http_portal_module: maps a request's host to its portal domain record (brand, sign-up
 * flags, customer limit, access) from the LMDB snapshot that portalctl writes, exposes it as
 * $portal_* variables, and enforces it at the edge. The lookup is the core library's job
 * (portal_core.h); this file is nginx glue only.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <grp.h>
#include <pwd.h>

#include "ngx_http_portal.h"


#define NGX_HTTP_PORTAL_SIGNUP_CUSTOMER  1
#define NGX_HTTP_PORTAL_SIGNUP_CARRIER   2

#define NGX_HTTP_PORTAL_MAX_GROUPS       256

#define NGX_HTTP_PORTAL_NHEADERS         7     /* X-Portal-* headers of portal_headers */


typedef struct {
    ngx_flag_t                 enable;          /* portal */
    ngx_int_t                  unknown_host;    /* portal_unknown_host: code, 0 is off */
    ngx_array_t               *require_access;  /* of ngx_str_t */
    ngx_uint_t                 require_signup;  /* NGX_HTTP_PORTAL_SIGNUP_* */
    ngx_flag_t                 headers;         /* portal_headers */
    u_char                    *enable_file;     /* where "portal on" was set */
    ngx_uint_t                 enable_line;
    u_char                    *gate_file;       /* where a portal_require_* was set */
    ngx_uint_t                 gate_line;
} ngx_http_portal_loc_conf_t;


/* what nginx -t checks in the data directory, for the worker user */
typedef struct {
    ngx_uint_t                 in_store;        /* name is under the store's directory */
    const char                *name;
    mode_t                     need;            /* as owner: S_IRUSR, S_IWUSR, S_IXUSR */
} ngx_http_portal_path_check_t;


typedef struct {
    ngx_uid_t                  uid;
    ngx_gid_t                  gid;
    char                      *name;
} ngx_http_portal_worker_t;


typedef struct {
    portal_domain_t            domain;
    ngx_str_t                  host;            /* canonical; empty if not a hostname */
    ngx_uint_t                 status;          /* 0, or the answer a bad host gets */
    unsigned                   found:1;
    unsigned                   error:1;
    unsigned                   headers_added:1;
} ngx_http_portal_ctx_t;


/* an X-Portal-* header that portal_headers adds, as nginx's header parser would make it */
typedef struct {
    ngx_str_t                  key;
    ngx_str_t                  lowcase_key;
    ngx_uint_t                 hash;            /* of lowcase_key, set at configuration */
    ngx_uint_t                 field;           /* ngx_http_portal_var_* */
} ngx_http_portal_header_t;


static ngx_http_portal_ctx_t *ngx_http_portal_resolve(ngx_http_request_t *r);
static ngx_http_portal_ctx_t *ngx_http_portal_get_ctx(ngx_http_request_t *r);
static void ngx_http_portal_ctx_cleanup(void *data);
static portal_reader_t *ngx_http_portal_reader(ngx_http_portal_main_conf_t *pmcf,
    ngx_log_t *log);
static ngx_uint_t ngx_http_portal_is_ours(ngx_str_t *key);
static ngx_int_t ngx_http_portal_strip_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_portal_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_portal_add_headers(ngx_http_request_t *r,
    ngx_http_portal_ctx_t *ctx);
static void ngx_http_portal_value(ngx_http_portal_ctx_t *ctx, ngx_uint_t field,
    ngx_str_t *value);
static ngx_int_t ngx_http_portal_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_portal_data(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_portal_init_zone(ngx_shm_zone_t *shm_zone, void *data);
static char *ngx_http_portal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_portal_ssl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_portal_unknown_host(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_portal_require_access(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_portal_require_signup(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_portal_check_path(ngx_conf_t *cf,
    ngx_http_portal_main_conf_t *pmcf, const char *store,
    ngx_http_portal_path_check_t *pc, ngx_http_portal_worker_t *w);

static ngx_int_t ngx_http_portal_add_variables(ngx_conf_t *cf);
static void *ngx_http_portal_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_portal_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_portal_create_srv_conf(ngx_conf_t *cf);
static char *ngx_http_portal_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child);
static void *ngx_http_portal_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_portal_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_portal_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_portal_init_process(ngx_cycle_t *cycle);
static void ngx_http_portal_exit_process(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_portal_ssl_unknown[] = {
    { ngx_string("fallback"), NGX_HTTP_PORTAL_SSL_FALLBACK },
    { ngx_string("reject"), NGX_HTTP_PORTAL_SSL_REJECT },
    { ngx_null_string, 0 }
};


static ngx_conf_num_bounds_t  ngx_http_portal_cache_bounds = {
    ngx_conf_check_num_bounds, 0, NGX_MAX_INT32_VALUE
};


static ngx_conf_num_bounds_t  ngx_http_portal_ssl_cache_bounds = {
    ngx_conf_check_num_bounds, 1, NGX_MAX_INT32_VALUE
};


static ngx_command_t  ngx_http_portal_commands[] = {

    { ngx_string("portal_data"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_portal_data,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal"),
      NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_http_portal,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_unknown_host"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_portal_unknown_host,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_require_access"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_portal_require_access,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_ssl"),
      NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_http_portal_ssl,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_ssl_unknown"),
      NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_portal_srv_conf_t, ssl_unknown),
      &ngx_http_portal_ssl_unknown },

    { ngx_string("portal_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_main_conf_t, cache),
      &ngx_http_portal_cache_bounds },

    { ngx_string("portal_ssl_cache"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_main_conf_t, ssl_cache),
      &ngx_http_portal_ssl_cache_bounds },

    { ngx_string("portal_require_signup"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_portal_require_signup,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_portal_loc_conf_t, headers),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_portal_module_ctx = {
    ngx_http_portal_add_variables,         /* preconfiguration */
    ngx_http_portal_init,                  /* postconfiguration */

    ngx_http_portal_create_main_conf,      /* create main configuration */
    ngx_http_portal_init_main_conf,        /* init main configuration */

    ngx_http_portal_create_srv_conf,       /* create server configuration */
    ngx_http_portal_merge_srv_conf,        /* merge server configuration */

    ngx_http_portal_create_loc_conf,       /* create location configuration */
    ngx_http_portal_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_portal_module = {
    NGX_MODULE_V1,
    &ngx_http_portal_module_ctx,           /* module context */
    ngx_http_portal_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_portal_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_portal_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


enum {
    ngx_http_portal_var_host = 0,
    ngx_http_portal_var_brand,
    ngx_http_portal_var_customer_limit,
    ngx_http_portal_var_access,
    ngx_http_portal_var_status,
    ngx_http_portal_var_customer_signup,
    ngx_http_portal_var_carrier_signup
};


static ngx_http_variable_t  ngx_http_portal_vars[] = {

    { ngx_string("portal_host"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_host, 0, 0 },

    { ngx_string("portal_brand"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_brand, 0, 0 },

    { ngx_string("portal_customer_limit"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_customer_limit, 0, 0 },

    { ngx_string("portal_access"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_access, 0, 0 },

    { ngx_string("portal_status"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_status, 0, 0 },

    { ngx_string("portal_customer_signup"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_customer_signup, 0, 0 },

    { ngx_string("portal_carrier_signup"), NULL, ngx_http_portal_variable,
      ngx_http_portal_var_carrier_signup, 0, 0 },

      ngx_http_null_variable
};


/* what portal_headers adds: the names and values of portal_params' proxy_set_header lines
 * before it, so that a backend sees the same request either way */

static ngx_http_portal_header_t  ngx_http_portal_headers[NGX_HTTP_PORTAL_NHEADERS] = {
    { ngx_string("X-Portal-Host"), ngx_string("x-portal-host"), 0,
      ngx_http_portal_var_host },
    { ngx_string("X-Portal-Brand"), ngx_string("x-portal-brand"), 0,
      ngx_http_portal_var_brand },
    { ngx_string("X-Portal-Customer-Signup"), ngx_string("x-portal-customer-signup"), 0,
      ngx_http_portal_var_customer_signup },
    { ngx_string("X-Portal-Carrier-Signup"), ngx_string("x-portal-carrier-signup"), 0,
      ngx_http_portal_var_carrier_signup },
    { ngx_string("X-Portal-Customer-Limit"), ngx_string("x-portal-customer-limit"), 0,
      ngx_http_portal_var_customer_limit },
    { ngx_string("X-Portal-Access"), ngx_string("x-portal-access"), 0,
      ngx_http_portal_var_access },
    { ngx_string("X-Portal-Status"), ngx_string("x-portal-status"), 0,
      ngx_http_portal_var_status }
};


static ngx_str_t  ngx_http_portal_header_prefix = ngx_string("x-portal-");
static ngx_str_t  ngx_http_portal_zone_name = ngx_string("portal_counters");


/* Finds the request's portal domain, once per request (the result outlives internal
 * redirects, which clear module contexts, through a pool cleanup as realip does). */

static ngx_http_portal_ctx_t *
ngx_http_portal_resolve(ngx_http_request_t *r)
{
    char                          err[PORTAL_ERRLEN];
    u_char                        host[PORTAL_MAX_HOST_LEN];
    size_t                        len;
    ngx_str_t                     authority;
    portal_rc_t                   rc;
    portal_reader_t              *reader;
    ngx_pool_cleanup_t           *cln;
    ngx_http_request_t           *mr;
    ngx_http_portal_ctx_t        *ctx;
    ngx_http_portal_counters_t   *counters;
    ngx_http_portal_main_conf_t  *pmcf;

    mr = r->main;

    ctx = ngx_http_portal_get_ctx(mr);
    if (ctx != NULL) {
        return ctx;
    }

    cln = ngx_pool_cleanup_add(mr->pool, sizeof(ngx_http_portal_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    ctx = cln->data;
    ngx_memzero(ctx, sizeof(ngx_http_portal_ctx_t));
    cln->handler = ngx_http_portal_ctx_cleanup;
    ngx_http_set_ctx(mr, ctx, ngx_http_portal_module);

    /*
     * The request line's host wins over the Host header (RFC 9112 3.2.2); nginx has already
     * lower-cased it and refused "..", NUL and the like.  The authority as the client sent
     * it is checked again here for what nginx lets through: its port.
     */

    if (mr->host_start && mr->host_end) {
        authority.data = mr->host_start;
        authority.len = (mr->port_end ? mr->port_end : mr->host_end) - mr->host_start;

    } else if (mr->headers_in.host) {
        authority = mr->headers_in.host->value;

    } else {
        authority = mr->headers_in.server;
    }

    pmcf = ngx_http_get_module_main_conf(mr, ngx_http_portal_module);

    if (pmcf->data.data == NULL) {
        /* $portal_* read in a configuration without portal_data: nothing to find */
        return ctx;
    }

    switch (portal_host_canonical((char *) authority.data, authority.len,
                                  (char *) host, &len))
    {
    case PORTAL_HOST_OK:
        break;

    case PORTAL_HOST_BAD_PORT:
        ctx->status = NGX_HTTP_BAD_REQUEST;
        return ctx;

    default:
        return ctx;
    }

    reader = ngx_http_portal_reader(pmcf, r->connection->log);
    if (reader == NULL) {
        ctx->error = 1;
        return ctx;
    }

    rc = portal_reader_lookup(reader, (char *) host, len, ngx_http_portal_alloc,
                              mr->pool, &ctx->domain, err, sizeof(err));

    if (pmcf->counters && rc != PORTAL_ERROR) {
        counters = &pmcf->counters[ngx_worker % NGX_HTTP_PORTAL_COUNTER_SLOTS];
        (void) ngx_atomic_fetch_add(rc == PORTAL_FOUND ? &counters->hit : &counters->miss, 1);
    }

    if (rc == PORTAL_FOUND) {
        /* the record's copy of the canonical host */
        ctx->host.data = (u_char *) ctx->domain.host.data;
        ctx->host.len = ctx->domain.host.len;
        ctx->found = 1;
        return ctx;
    }

    ctx->host.data = ngx_pnalloc(mr->pool, len);
    if (ctx->host.data == NULL) {
        return NULL;
    }

    ctx->host.len = len;
    ngx_memcpy(ctx->host.data, host, len);

    switch (rc) {

    case PORTAL_NOT_FOUND:
        break;

    case PORTAL_MALFORMED:
        if (err[0]) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "portal domain \"%*s\": %s; treated as unknown",
                          len, host, err);
        }
        break;

    default: /* PORTAL_ERROR */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "portal domain \"%*s\": lookup failed: %s", len, host, err);
        ctx->error = 1;

        /* start afresh: the next request opens the snapshot again */
        portal_reader_close(pmcf->reader);
        pmcf->reader = NULL;
        pmcf->reopen_at = 0;
        break;
    }

    return ctx;
}


static ngx_http_portal_ctx_t *
ngx_http_portal_get_ctx(ngx_http_request_t *r)
{
    ngx_pool_cleanup_t     *cln;
    ngx_http_portal_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_portal_module);

    if (ctx == NULL && (r->internal || r->filter_finalize)) {

        /* an internal redirect has cleared the module contexts */

        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_portal_ctx_cleanup) {
                ctx = cln->data;
                ngx_http_set_ctx(r, ctx, ngx_http_portal_module);
                break;
            }
        }
    }

    return ctx;
}


static void
ngx_http_portal_ctx_cleanup(void *data)
{
    /* nothing to free: the context only marks the request's pool */
}


/* The worker's snapshot reader, opened after fork and again after a failure. */

static portal_reader_t *
ngx_http_portal_reader(ngx_http_portal_main_conf_t *pmcf, ngx_log_t *log)
{
    char  err[PORTAL_ERRLEN];

    if (pmcf->reader || ngx_time() < pmcf->reopen_at) {
        return pmcf->reader;
    }

    pmcf->reader = portal_reader_open((char *) pmcf->data.data, pmcf->cache, err,
                                      sizeof(err));

    if (pmcf->reader == NULL) {
        pmcf->reopen_at = ngx_time() + NGX_HTTP_PORTAL_REOPEN_DELAY;
        ngx_log_error(NGX_LOG_ALERT, log, 0, "portal snapshot unavailable: %s", err);
    }

    return pmcf->reader;
}


void *
ngx_http_portal_alloc(void *pool, size_t size)
{
    return ngx_palloc(pool, size);
}


/* A client's own X-Portal-* headers never reach the backend, whatever location the request
 * ends in: with portal_data set, the list is rebuilt without them before anything else
 * runs (only when there are any, which a well-behaved client never sends). */

static ngx_int_t
ngx_http_portal_strip_handler(ngx_http_request_t *r)
{
    ngx_uint_t                    i, n, found;
    ngx_list_t                    old;
    ngx_list_part_t              *part;
    ngx_table_elt_t              *h, *copy;
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_portal_module);

    if (pmcf->data.data == NULL || r != r->main) {
        return NGX_DECLINED;
    }

    found = 0;
    n = 0;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++, n++) {
            found += ngx_http_portal_is_ours(&h[i].key);
        }
    }

    if (found == 0) {
        return NGX_DECLINED;
    }

    /* built in place: a list copied by value would keep "last" pointing into the copy */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, n - found ? n - found : 1,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (part = &old.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {
            if (ngx_http_portal_is_ours(&h[i].key)) {
                ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                               "portal: client header \"%V: %V\" dropped",
                               &h[i].key, &h[i].value);
                continue;
            }

            copy = ngx_list_push(&r->headers_in.headers);
            if (copy == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            *copy = h[i];
        }
    }

    return NGX_DECLINED;
}


/* "X-Portal-", any case, and "X_Portal_" too: CGI-style backends read both as HTTP_X_PORTAL_ */

static ngx_uint_t
ngx_http_portal_is_ours(ngx_str_t *key)
{
    u_char      c;
    ngx_uint_t  i;

    if (key->len < ngx_http_portal_header_prefix.len) {
        return 0;
    }

    for (i = 0; i < ngx_http_portal_header_prefix.len; i++) {
        c = ngx_tolower(key->data[i]);

        if (c == '_') {
            c = '-';
        }

        if (c != ngx_http_portal_header_prefix.data[i]) {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_portal_handler(ngx_http_request_t *r)
{
    ngx_str_t                   *name;
    ngx_uint_t                   i, k;
    ngx_http_portal_ctx_t       *ctx;
    ngx_http_portal_loc_conf_t  *plcf;

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_portal_module);

    if (!plcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_portal_resolve(r);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->error) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->status) {
        return ctx->status;
    }

#if (NGX_HTTP_SSL)
    if (r->connection->ssl
        && ngx_http_portal_ssl_sni_differs(r, &ctx->host))
    {
        return NGX_HTTP_MISDIRECTED_REQUEST;
    }
#endif

    if (!ctx->found) {
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "portal: unknown host \"%V\"", &r->headers_in.server);

        if (plcf->unknown_host) {
            return plcf->unknown_host;
        }

        /* with "portal_unknown_host off", a host that is no portal domain has no section */
        return (plcf->require_access || plcf->require_signup) ? NGX_HTTP_FORBIDDEN
                                                              : NGX_DECLINED;
    }

    if (ctx->domain.suspended) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "portal domain \"%*s\" is suspended",
                      ctx->domain.host.len, ctx->domain.host.data);
        return NGX_HTTP_FORBIDDEN;
    }

    if (((plcf->require_signup & NGX_HTTP_PORTAL_SIGNUP_CUSTOMER)
         && !ctx->domain.customer_signup)
        || ((plcf->require_signup & NGX_HTTP_PORTAL_SIGNUP_CARRIER)
            && !ctx->domain.carrier_signup))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "portal domain \"%*s\": sign-up not enabled",
                      ctx->domain.host.len, ctx->domain.host.data);
        return NGX_HTTP_FORBIDDEN;
    }

    if (plcf->require_access) {
        name = plcf->require_access->elts;

        for (i = 0; i < plcf->require_access->nelts; i++) {

            for (k = 0; k < ctx->domain.nsections; k++) {
                if (ctx->domain.sections[k].len == name[i].len
                    && ngx_memcmp(ctx->domain.sections[k].data, name[i].data,
                                  name[i].len)
                       == 0)
                {
                    break;
                }
            }

            if (k == ctx->domain.nsections) {
                ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                              "portal domain \"%*s\": no access to \"%V\"",
                              ctx->domain.host.len, ctx->domain.host.data,
                              &name[i]);
                return NGX_HTTP_FORBIDDEN;
            }
        }
    }

    if (plcf->headers && r == r->main) {
        return ngx_http_portal_add_headers(r, ctx);
    }

    return NGX_DECLINED;
}


/* The X-Portal-* headers join the request's own, once per request (an internal redirect
 * runs this phase again): every backend module passes them on (proxy, fastcgi as
 * HTTP_X_PORTAL_*, uwsgi, scgi, grpc), and a proxy_set_header of the same name replaces
 * them.  The client's own were dropped in POST_READ, before anything could read them. */

static ngx_int_t
ngx_http_portal_add_headers(ngx_http_request_t *r, ngx_http_portal_ctx_t *ctx)
{
    ngx_str_t                  value[NGX_HTTP_PORTAL_NHEADERS];
    ngx_uint_t                 i, n, reserved;
    ngx_list_t                *list;
    ngx_table_elt_t           *h;
    ngx_http_portal_header_t  *hd;

    if (ctx->headers_added) {
        return NGX_DECLINED;
    }

    ctx->headers_added = 1;

    n = 0;

    for (i = 0; i < NGX_HTTP_PORTAL_NHEADERS; i++) {
        ngx_http_portal_value(ctx, ngx_http_portal_headers[i].field, &value[i]);

        /* as proxy_set_header does with an empty value: no header */
        n += (value[i].len != 0);
    }

    /* in one step when the list's last part has room for all of them, else one by one */

    list = &r->headers_in.headers;
    reserved = (list->last->nelts + n <= list->nalloc);
    h = NULL;

    if (reserved) {
        h = (ngx_table_elt_t *) list->last->elts + list->last->nelts;
        list->last->nelts += n;
    }

    for (i = 0; i < NGX_HTTP_PORTAL_NHEADERS; i++) {

        if (value[i].len == 0) {
            continue;
        }

        if (!reserved) {
            h = ngx_list_push(list);
            if (h == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        hd = &ngx_http_portal_headers[i];

        h->hash = hd->hash;
        h->key = hd->key;
        h->value = value[i];
        h->lowcase_key = hd->lowcase_key.data;
#if (nginx_version >= 1023000)
        h->next = NULL;
#endif

        h++;
    }

    return NGX_DECLINED;
}


/* One field of a found domain, as its $portal_* variable and X-Portal-* header show it. */

static void
ngx_http_portal_value(ngx_http_portal_ctx_t *ctx, ngx_uint_t field, ngx_str_t *value)
{
    portal_str_t  *s;
    ngx_uint_t     on;

    switch (field) {

    case ngx_http_portal_var_host:
        s = &ctx->domain.host;
        break;

    case ngx_http_portal_var_brand:
        s = &ctx->domain.brand;
        break;

    case ngx_http_portal_var_customer_limit:
        s = &ctx->domain.customer_limit;
        break;

    case ngx_http_portal_var_access:
        s = &ctx->domain.access;
        break;

    case ngx_http_portal_var_status:
        s = &ctx->domain.status;
        break;

    default: /* the sign-up flags */
        on = (field == ngx_http_portal_var_customer_signup) ? ctx->domain.customer_signup
                                                            : ctx->domain.carrier_signup;
        value->len = 1;
        value->data = (u_char *) (on ? "1" : "0");
        return;
    }

    value->len = s->len;
    value->data = (u_char *) s->data;
}


static ngx_int_t
ngx_http_portal_variable(ngx_http_request_t *r, ngx_http_variable_value_t *v,
    uintptr_t data)
{
    ngx_str_t               value;
    ngx_http_portal_ctx_t  *ctx;

    ctx = ngx_http_portal_resolve(r);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (!ctx->found) {
        v->not_found = 1;
        return NGX_OK;
    }

    ngx_http_portal_value(ctx, data, &value);

    v->len = value.len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = value.data;

    return NGX_OK;
}


static char *
ngx_http_portal_data(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_main_conf_t *pmcf = conf;

    ngx_str_t       *value;
    ngx_shm_zone_t  *shm_zone;

    if (pmcf->data.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    /* both forms are NUL-terminated, as the core library wants */
    pmcf->data = value[1];

    if (ngx_conf_full_name(cf->cycle, &pmcf->data, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_portal_check_store(cf, pmcf, "snapshot") != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    shm_zone = ngx_shared_memory_add(cf, &ngx_http_portal_zone_name, 8 * ngx_pagesize,
                                     &ngx_http_portal_module);
    if (shm_zone == NULL) {
        return NGX_CONF_ERROR;
    }

    shm_zone->init = ngx_http_portal_init_zone;
    shm_zone->data = pmcf;

    return NGX_CONF_OK;
}


/* The counters outlive reloads: a new cycle takes the old cycle's. */

static ngx_int_t
ngx_http_portal_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_portal_main_conf_t  *opmcf = data;

    ngx_slab_pool_t              *shpool;
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = shm_zone->data;

    if (opmcf) {
        pmcf->counters = opmcf->counters;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        pmcf->counters = shpool->data;
        return NGX_OK;
    }

    pmcf->counters = ngx_slab_calloc(shpool, NGX_HTTP_PORTAL_COUNTER_SLOTS
                                             * sizeof(ngx_http_portal_counters_t));
    if (pmcf->counters == NULL) {
        return NGX_ERROR;
    }

    shpool->data = pmcf->counters;

    return NGX_OK;
}


/* nginx -t says what a worker would meet at start: no directory, no store, a path that
 * the worker user cannot enter or read (or, for LMDB's lock file, write), or a data file that
 * is empty or truncated. */

ngx_int_t
ngx_http_portal_check_store(ngx_conf_t *cf, ngx_http_portal_main_conf_t *pmcf,
    const char *store)
{
    char                       err[PORTAL_ERRLEN];
    ngx_uint_t                 i;
    ngx_file_info_t            fi;
    ngx_core_conf_t           *ccf;
    struct passwd             *pw;
    ngx_http_portal_worker_t   w;

    static ngx_http_portal_path_check_t  checks[] = {
        { 0, "", S_IXUSR },
        { 1, "", S_IXUSR },
        { 1, "/data.mdb", S_IRUSR },
        { 1, "/lock.mdb", S_IRUSR|S_IWUSR },
    };

    if (ngx_file_info(pmcf->data.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "portal data directory \"%s\" cannot be opened",
                           pmcf->data.data);
        return NGX_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "portal data directory \"%s\" is not a directory",
                           pmcf->data.data);
        return NGX_ERROR;
    }

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx, ngx_core_module);

    w.uid = ccf->user;
    w.gid = ccf->group;
    w.name = ccf->username;

    if (w.uid == (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        /* "user" may come after "http": then nginx's default for its start user */
        pw = (geteuid() == 0) ? getpwnam(NGX_USER) : getpwuid(geteuid());

        w.uid = pw ? pw->pw_uid : 0;    /* unknown: existence checks only */
        w.gid = pw ? pw->pw_gid : 0;
        w.name = pw ? pw->pw_name : NULL;
    }

    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        if (ngx_http_portal_check_path(cf, pmcf, store, &checks[i], &w) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* an empty or truncated data file: workers could not read it */

    if (portal_store_check((char *) pmcf->data.data, store, err, sizeof(err)) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "portal data \"%s\": %s",
                           pmcf->data.data, err);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_portal_check_path(ngx_conf_t *cf, ngx_http_portal_main_conf_t *pmcf,
    const char *store, ngx_http_portal_path_check_t *pc, ngx_http_portal_worker_t *w)
{
    int              n, i;
    u_char           path[NGX_MAX_PATH];
    gid_t            groups[NGX_HTTP_PORTAL_MAX_GROUPS];
    mode_t           need;
    ngx_uint_t       member;
    ngx_file_info_t  fi;

    ngx_snprintf(path, sizeof(path), "%s%s%s%s%Z", pmcf->data.data,
                 pc->in_store ? "/" : "", pc->in_store ? store : "", pc->name);

    if (ngx_file_info(path, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "portal data \"%s\" has no %s: \"%s\" cannot be "
                           "opened (create it with \"portalctl --data %s init\")",
                           pmcf->data.data, store, path, pmcf->data.data);
        return NGX_ERROR;
    }

    if (w->uid == 0) {
        return NGX_OK;
    }

    need = pc->need;

    if (fi.st_uid != w->uid) {

        member = (fi.st_gid == w->gid);

        if (!member && w->name) {
            n = NGX_HTTP_PORTAL_MAX_GROUPS;

            if (getgrouplist(w->name, w->gid, groups, &n) != -1) {
                for (i = 0; i < n; i++) {
                    if (groups[i] == fi.st_gid) {
                        member = 1;
                        break;
                    }
                }
            }
        }

        need = member ? need >> 3 : need >> 6;
    }

    if ((fi.st_mode & need) != need) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "portal data \"%s\": the worker user \"%s\" cannot %s "
                           "\"%s\" (the data directory and its files belong to "
                           "the worker user: chown -R %s %s)",
                           pmcf->data.data, w->name ? w->name : "?",
                           (pc->need & S_IXUSR) ? "enter"
                           : (pc->need & S_IWUSR) ? "read and write" : "read",
                           path, w->name ? w->name : "USER",
                           pmcf->data.data);
        return NGX_ERROR;
    }

    return NGX_OK;
}


static char *
ngx_http_portal(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_loc_conf_t *plcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv == NGX_CONF_OK && plcf->enable) {
        plcf->enable_file = cf->conf_file->file.name.data;
        plcf->enable_line = cf->conf_file->line;
    }

    return rv;
}


static char *
ngx_http_portal_ssl(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_srv_conf_t *pscf = conf;

    char                         *rv;
    ngx_http_portal_main_conf_t  *pmcf;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);

    if (rv != NGX_CONF_OK || !pscf->ssl) {
        return rv;
    }

    pscf->ssl_file = cf->conf_file->file.name.data;
    pscf->ssl_line = cf->conf_file->line;

    /* without portal_data yet, merging says so */

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_module);

    if (pmcf->data.data && !pmcf->state_checked) {
        if (ngx_http_portal_check_store(cf, pmcf, "state") != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        pmcf->state_checked = 1;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_portal_unknown_host(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_loc_conf_t *plcf = conf;

    ngx_int_t   code;
    ngx_str_t  *value;

    if (plcf->unknown_host != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        plcf->unknown_host = 0;
        return NGX_CONF_OK;
    }

    code = ngx_atoi(value[1].data, value[1].len);

    if (code < 400 || code > 599) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": a status code 400-599, or \"off\"",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    plcf->unknown_host = code;

    return NGX_CONF_OK;
}


static char *
ngx_http_portal_require_access(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_loc_conf_t *plcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i;

    if (plcf->require_access != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (plcf->gate_file == NULL) {
        plcf->gate_file = cf->conf_file->file.name.data;
        plcf->gate_line = cf->conf_file->line;
    }

    plcf->require_access = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                            sizeof(ngx_str_t));
    if (plcf->require_access == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (!portal_section_valid((char *) value[i].data, value[i].len)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": a section name is 1 to 32 "
                               "of [a-z0-9_]", &value[i]);
            return NGX_CONF_ERROR;
        }

        name = ngx_array_push(plcf->require_access);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_portal_require_signup(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_loc_conf_t *plcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (plcf->require_signup != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    if (plcf->gate_file == NULL) {
        plcf->gate_file = cf->conf_file->file.name.data;
        plcf->gate_line = cf->conf_file->line;
    }

    plcf->require_signup = 0;
    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strcmp(value[i].data, "customer") == 0) {
            plcf->require_signup |= NGX_HTTP_PORTAL_SIGNUP_CUSTOMER;

        } else if (ngx_strcmp(value[i].data, "carrier") == 0) {
            plcf->require_signup |= NGX_HTTP_PORTAL_SIGNUP_CARRIER;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid value \"%V\": \"customer\" or \"carrier\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_portal_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_portal_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static void *
ngx_http_portal_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_portal_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pmcf->data = { 0, NULL };
     *     pmcf->reader = NULL;
     *     pmcf->reopen_at = 0;
     *     pmcf->certs = NULL;
     *     pmcf->certs_reopen_at = 0;
     *     pmcf->ssl_used = 0;
     *     pmcf->state_checked = 0;
     */

    pmcf->cache = NGX_CONF_UNSET_UINT;
    pmcf->ssl_cache = NGX_CONF_UNSET_UINT;

    return pmcf;
}


static char *
ngx_http_portal_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_portal_main_conf_t *pmcf = conf;

    ngx_conf_init_uint_value(pmcf->cache, NGX_HTTP_PORTAL_CACHE);
    ngx_conf_init_uint_value(pmcf->ssl_cache, NGX_HTTP_PORTAL_SSL_CACHE);

    return NGX_CONF_OK;
}


static void *
ngx_http_portal_create_srv_conf(ngx_conf_t *cf)
{
    ngx_http_portal_srv_conf_t  *pscf;

    pscf = ngx_pcalloc(cf->pool, sizeof(ngx_http_portal_srv_conf_t));
    if (pscf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     pscf->ssl_file = NULL;
     *     pscf->ssl_line = 0;
     */

    pscf->ssl = NGX_CONF_UNSET;
    pscf->ssl_unknown = NGX_CONF_UNSET_UINT;

    return pscf;
}


static char *
ngx_http_portal_merge_srv_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_portal_srv_conf_t *prev = parent;
    ngx_http_portal_srv_conf_t *conf = child;

    ngx_conf_merge_value(conf->ssl, prev->ssl, 0);
    ngx_conf_merge_uint_value(conf->ssl_unknown, prev->ssl_unknown,
                              NGX_HTTP_PORTAL_SSL_FALLBACK);

    if (!conf->ssl) {
        return NGX_CONF_OK;
    }

#if (NGX_HTTP_SSL)
    return ngx_http_portal_ssl_merge(cf, conf);
#else
    ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                  "\"portal_ssl\" needs nginx built with the ssl module in %s:%ui",
                  conf->ssl_file, conf->ssl_line);
    return NGX_CONF_ERROR;
#endif
}


static void *
ngx_http_portal_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_portal_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_portal_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     plcf->enable_file = NULL;
     *     plcf->enable_line = 0;
     *     plcf->gate_file = NULL;
     *     plcf->gate_line = 0;
     */

    plcf->enable = NGX_CONF_UNSET;
    plcf->unknown_host = NGX_CONF_UNSET;
    plcf->require_access = NGX_CONF_UNSET_PTR;
    plcf->require_signup = NGX_CONF_UNSET_UINT;
    plcf->headers = NGX_CONF_UNSET;

    return plcf;
}


static char *
ngx_http_portal_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_portal_loc_conf_t *prev = parent;
    ngx_http_portal_loc_conf_t *conf = child;

    ngx_http_portal_main_conf_t  *pmcf;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_value(conf->unknown_host, prev->unknown_host,
                         NGX_HTTP_MISDIRECTED_REQUEST);
    ngx_conf_merge_ptr_value(conf->require_access, prev->require_access, NULL);
    ngx_conf_merge_uint_value(conf->require_signup, prev->require_signup, 0);
    ngx_conf_merge_value(conf->headers, prev->headers, 0);

    if (conf->enable_file == NULL) {
        conf->enable_file = prev->enable_file;
        conf->enable_line = prev->enable_line;
    }

    if (conf->gate_file == NULL) {
        conf->gate_file = prev->gate_file;
        conf->gate_line = prev->gate_line;
    }

    if (!conf->enable) {
        if (conf->require_access || conf->require_signup) {
            /* a gate that never runs would let everybody in */
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"portal_require_access\" and \"portal_require_signup\" "
                          "need \"portal on\" in %s:%ui",
                          conf->gate_file, conf->gate_line);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_module);

    if (pmcf->data.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"portal on\" needs \"portal_data\" in the http block "
                      "in %s:%ui", conf->enable_file, conf->enable_line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_portal_init(ngx_conf_t *cf)
{
    ngx_uint_t                  i;
    ngx_http_handler_pt        *h;
    ngx_http_portal_header_t   *hd;
    ngx_http_core_main_conf_t  *cmcf;

    for (i = 0; i < NGX_HTTP_PORTAL_NHEADERS; i++) {
        hd = &ngx_http_portal_headers[i];
        hd->hash = ngx_hash_key(hd->lowcase_key.data, hd->lowcase_key.len);
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_portal_strip_handler;

    /* preaccess, not access: "satisfy any" must not let a request past the portal gate */

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_PREACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_portal_handler;

#if (NGX_HTTP_SSL)
    if (ngx_http_portal_ssl_check_listen(cf) != NGX_OK) {
        return NGX_ERROR;
    }
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_portal_init_process(ngx_cycle_t *cycle)
{
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_portal_module);

    if (pmcf == NULL || pmcf->data.data == NULL) {
        return NGX_OK;
    }

    /* LMDB environments are opened after fork, in each worker, never in the master; the
     * ACME engine's read-write one first, so that the readers share it */

    (void) ngx_http_portal_acme_init_process(cycle);

    (void) ngx_http_portal_reader(pmcf, cycle->log);

#if (NGX_HTTP_SSL)
    if (pmcf->ssl_used) {
        (void) ngx_http_portal_ssl_certs(pmcf, cycle->log);
    }
#endif

    return NGX_OK;
}


static void
ngx_http_portal_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_portal_module);

    if (pmcf && pmcf->reader) {
        portal_reader_close(pmcf->reader);
        pmcf->reader = NULL;
    }

    if (pmcf && pmcf->certs) {
        portal_certs_close(pmcf->certs);
        pmcf->certs = NULL;
    }
}
