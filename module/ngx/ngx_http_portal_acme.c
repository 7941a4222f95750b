/*
 * ngx_http_portal_acme_module: certificates for every portal domain through ACME, and the
 * HTTP-01 responder. The engine itself is the core library's (capi/portal_acme.h): a
 * thread in the one worker that holds the data directory's ACME lock; every worker retries
 * the lock each second, so the engine survives reloads and worker restarts, and each
 * worker drains the engine's log lines into its own error log on its event loop.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_portal.h"
#include "portal_acme.h"


#define NGX_HTTP_PORTAL_ACME_TICK       250     /* ms: log drain */
#define NGX_HTTP_PORTAL_ACME_LOCK_TICKS 4       /* lock retried every 4 ticks (1 s) */
#define NGX_HTTP_PORTAL_ACME_MAX_BACKOFF 8


typedef struct {
    ngx_flag_t                 enable;
    ngx_flag_t                 challenge;       /* the HTTP-01 responder */
    ngx_str_t                  directory;
    ngx_array_t               *contact;         /* of char * */
    ngx_str_t                  ca_file;
    ngx_str_t                  key_type;
    ngx_str_t                  cname_target;
    ngx_array_t               *edge_addresses;  /* of char * */
    ngx_str_t                  resolver;
    ngx_array_t               *backoff;         /* of long, seconds */
    time_t                     dns_recheck;
    ngx_uint_t                 concurrency;
    ngx_str_t                  preferred_chain;
    ngx_str_t                  profile;
    ngx_str_t                  eab_kid;
    ngx_str_t                  eab_key_file;

    u_char                    *file;            /* where "portal_acme on" was set */
    ngx_uint_t                 line;

    portal_acme_conf_t         conf;            /* the above, for the core */

    portal_acme_t             *acme;            /* per worker, after fork */
    portal_state_t            *state;
    time_t                     state_reopen_at;
    ngx_event_t                tick;
    ngx_uint_t                 ticks;
    ngx_uint_t                 running;
} ngx_http_portal_acme_main_conf_t;


static ngx_int_t ngx_http_portal_acme_challenge_handler(ngx_http_request_t *r);
static portal_state_t *ngx_http_portal_acme_state(ngx_http_portal_acme_main_conf_t *amcf,
    ngx_str_t *data, ngx_log_t *log);
static void ngx_http_portal_acme_tick(ngx_event_t *ev);
static void ngx_http_portal_acme_log(void *ctx, int level, const char *line, size_t len);
static char *ngx_http_portal_acme(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_portal_acme_strings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_portal_acme_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_portal_acme_eab(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static void *ngx_http_portal_acme_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_portal_acme_init_main_conf(ngx_conf_t *cf, void *conf);
static const char *ngx_http_portal_acme_cstr(ngx_str_t *s);
static ngx_int_t ngx_http_portal_acme_init(ngx_conf_t *cf);
static void ngx_http_portal_acme_exit_process(ngx_cycle_t *cycle);


static ngx_conf_num_bounds_t  ngx_http_portal_acme_concurrency_bounds = {
    ngx_conf_check_num_bounds, 1, 64
};


static ngx_command_t  ngx_http_portal_acme_commands[] = {

    { ngx_string("portal_acme"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_portal_acme,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, enable),
      NULL },

    { ngx_string("portal_acme_challenge"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_http_portal_acme,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, challenge),
      NULL },

    { ngx_string("portal_acme_directory"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, directory),
      NULL },

    { ngx_string("portal_acme_contact"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_portal_acme_strings,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, contact),
      NULL },

    { ngx_string("portal_acme_ca_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, ca_file),
      NULL },

    { ngx_string("portal_acme_key_type"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, key_type),
      NULL },

    { ngx_string("portal_acme_cname_target"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, cname_target),
      NULL },

    { ngx_string("portal_acme_edge_addresses"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_portal_acme_strings,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, edge_addresses),
      NULL },

    { ngx_string("portal_acme_resolver"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, resolver),
      NULL },

    { ngx_string("portal_acme_backoff"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_portal_acme_backoff,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("portal_acme_dns_recheck"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, dns_recheck),
      NULL },

    { ngx_string("portal_acme_concurrency"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, concurrency),
      &ngx_http_portal_acme_concurrency_bounds },

    { ngx_string("portal_acme_preferred_chain"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, preferred_chain),
      NULL },

    { ngx_string("portal_acme_profile"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_portal_acme_main_conf_t, profile),
      NULL },

    { ngx_string("portal_acme_eab"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_portal_acme_eab,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_portal_acme_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_portal_acme_init,             /* postconfiguration */

    ngx_http_portal_acme_create_main_conf, /* create main configuration */
    ngx_http_portal_acme_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    NULL,                                  /* create location configuration */
    NULL                                   /* merge location configuration */
};


ngx_module_t  ngx_http_portal_acme_module = {
    NGX_MODULE_V1,
    &ngx_http_portal_acme_module_ctx,      /* module context */
    ngx_http_portal_acme_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process: see below */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_portal_acme_exit_process,     /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_portal_acme_prefix =
    ngx_string("/.well-known/acme-challenge/");


/* HTTP-01, in any worker and before any rewrite (a "redirect to https" must not hide it):
 * the key authorization the engine published for the token, or 404. */

static ngx_int_t
ngx_http_portal_acme_challenge_handler(ngx_http_request_t *r)
{
    u_char                            *token;
    size_t                             len;
    ngx_buf_t                         *b;
    ngx_int_t                          rc;
    ngx_chain_t                        out;
    portal_str_t                       keyauth;
    portal_state_t                    *state;
    ngx_http_portal_main_conf_t       *pmcf;
    ngx_http_portal_acme_main_conf_t  *amcf;
    char                               err[PORTAL_ERRLEN];

    amcf = ngx_http_get_module_main_conf(r, ngx_http_portal_acme_module);

    if (!amcf->challenge || r != r->main
        || r->uri.len <= ngx_http_portal_acme_prefix.len
        || ngx_strncmp(r->uri.data, ngx_http_portal_acme_prefix.data,
                       ngx_http_portal_acme_prefix.len) != 0)
    {
        return NGX_DECLINED;
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    token = r->uri.data + ngx_http_portal_acme_prefix.len;
    len = r->uri.len - ngx_http_portal_acme_prefix.len;

    if (!portal_acme_token_valid((char *) token, len)) {
        return NGX_HTTP_NOT_FOUND;
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_portal_module);

    state = ngx_http_portal_acme_state(amcf, &pmcf->data, r->connection->log);
    if (state == NULL) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    rc = portal_acme_challenge(state, (char *) token, len, ngx_http_portal_alloc, r->pool,
                               &keyauth, err, sizeof(err));

    if (rc == PORTAL_NOT_FOUND) {
        return NGX_HTTP_NOT_FOUND;
    }

    if (rc != PORTAL_FOUND) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "portal: acme challenge: %s", err);

        /* start afresh: the next request opens the state store again */
        portal_state_close(amcf->state);
        amcf->state = NULL;
        amcf->state_reopen_at = 0;

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "portal: acme challenge \"%*s\" answered for \"%V\"",
                  len, token, &r->headers_in.server);

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = keyauth.len;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        return NGX_DONE;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) keyauth.data;
    b->last = b->pos + keyauth.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));

    return NGX_DONE;
}


static portal_state_t *
ngx_http_portal_acme_state(ngx_http_portal_acme_main_conf_t *amcf, ngx_str_t *data,
    ngx_log_t *log)
{
    char  err[PORTAL_ERRLEN];

    if (amcf->state || ngx_time() < amcf->state_reopen_at) {
        return amcf->state;
    }

    amcf->state = portal_state_open((char *) data->data, err, sizeof(err));

    if (amcf->state == NULL) {
        amcf->state_reopen_at = ngx_time() + NGX_HTTP_PORTAL_REOPEN_DELAY;
        ngx_log_error(NGX_LOG_ERR, log, 0, "portal: acme: %s", err);
    }

    return amcf->state;
}


static void
ngx_http_portal_acme_log(void *ctx, int level, const char *line, size_t len)
{
    ngx_log_t  *log = ctx;

    static ngx_uint_t  levels[] = {
        NGX_LOG_ERR, NGX_LOG_WARN, NGX_LOG_NOTICE, NGX_LOG_INFO, NGX_LOG_DEBUG
    };

    if (level < 0 || level > PORTAL_LOG_DEBUG) {
        level = PORTAL_LOG_ERR;
    }

    ngx_log_error(levels[level], log, 0, "portal: %*s", len, line);
}


static void
ngx_http_portal_acme_tick(ngx_event_t *ev)
{
    int                                rc;
    ngx_http_portal_acme_main_conf_t  *amcf = ev->data;
    char                               err[PORTAL_ERRLEN];

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        /* a graceful shutdown may take long (open connections): the engine stops now, so
         * that the lock goes to the new generation of workers at once */
        rc = portal_acme_wind_down(amcf->acme);
        portal_acme_drain_log(amcf->acme, ngx_http_portal_acme_log, ev->log);

        if (!rc) {
            ngx_add_timer(ev, NGX_HTTP_PORTAL_ACME_TICK);
        }

        return;
    }

    if (!amcf->running && amcf->ticks++ % NGX_HTTP_PORTAL_ACME_LOCK_TICKS == 0) {
        rc = portal_acme_try_start(amcf->acme, err, sizeof(err));

        if (rc == 1) {
            amcf->running = 1;
            ngx_log_error(NGX_LOG_NOTICE, ev->log, 0,
                          "portal: acme: this worker runs the ACME engine");

        } else if (rc < 0) {
            ngx_log_error(NGX_LOG_ERR, ev->log, 0, "portal: acme: %s", err);
        }
    }

    portal_acme_drain_log(amcf->acme, ngx_http_portal_acme_log, ev->log);

    ngx_add_timer(ev, NGX_HTTP_PORTAL_ACME_TICK);
}


static char *
ngx_http_portal_acme(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_acme_main_conf_t *amcf = conf;

    char  *rv;

    rv = ngx_conf_set_flag_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    if (amcf->file == NULL || cmd->offset == offsetof(ngx_http_portal_acme_main_conf_t, enable)) {
        amcf->file = cf->conf_file->file.name.data;
        amcf->line = cf->conf_file->line;
    }

    return NGX_CONF_OK;
}


/* A directive's arguments as NUL-terminated strings, for the core. */

static char *
ngx_http_portal_acme_strings(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char         **s;
    ngx_str_t     *value;
    ngx_uint_t     i;
    ngx_array_t  **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a != NGX_CONF_UNSET_PTR && *a != NULL) {
        return "is duplicate";
    }

    *a = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(char *));
    if (*a == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid value \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        s = ngx_array_push(*a);
        if (s == NULL) {
            return NGX_CONF_ERROR;
        }

        *s = (char *) value[i].data;    /* nginx keeps arguments NUL-terminated */
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_portal_acme_backoff(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_acme_main_conf_t *amcf = conf;

    long        *t;
    time_t       sec;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (amcf->backoff != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    if (cf->args->nelts - 1 > NGX_HTTP_PORTAL_ACME_MAX_BACKOFF) {
        return "takes at most 8 delays";
    }

    amcf->backoff = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(long));
    if (amcf->backoff == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {
        sec = ngx_parse_time(&value[i], 1);

        if (sec == (time_t) NGX_ERROR || sec <= 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid delay \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        t = ngx_array_push(amcf->backoff);
        if (t == NULL) {
            return NGX_CONF_ERROR;
        }

        *t = (long) sec;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_portal_acme_eab(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_portal_acme_main_conf_t *amcf = conf;

    ngx_str_t  *value;

    if (amcf->eab_kid.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    amcf->eab_kid = value[1];
    amcf->eab_key_file = value[2];

    if (ngx_conf_full_name(cf->cycle, &amcf->eab_key_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_portal_acme_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_portal_acme_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_portal_acme_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc(): every ngx_str_t empty, amcf->acme = NULL, amcf->state = NULL,
     * amcf->running = 0
     */

    amcf->enable = NGX_CONF_UNSET;
    amcf->challenge = NGX_CONF_UNSET;
    amcf->contact = NGX_CONF_UNSET_PTR;
    amcf->edge_addresses = NGX_CONF_UNSET_PTR;
    amcf->backoff = NGX_CONF_UNSET_PTR;
    amcf->dns_recheck = NGX_CONF_UNSET;
    amcf->concurrency = NGX_CONF_UNSET_UINT;

    return amcf;
}


static const char *
ngx_http_portal_acme_cstr(ngx_str_t *s)
{
    return s->len ? (const char *) s->data : NULL;
}


static char *
ngx_http_portal_acme_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_portal_acme_main_conf_t *amcf = conf;

    portal_acme_conf_t           *c;
    ngx_http_portal_main_conf_t  *pmcf;
    char                          err[PORTAL_ERRLEN];

    ngx_conf_init_value(amcf->enable, 0);
    ngx_conf_init_value(amcf->challenge, amcf->enable);
    ngx_conf_init_ptr_value(amcf->contact, NULL);
    ngx_conf_init_ptr_value(amcf->edge_addresses, NULL);
    ngx_conf_init_ptr_value(amcf->backoff, NULL);
    ngx_conf_init_value(amcf->dns_recheck, 3600);
    ngx_conf_init_uint_value(amcf->concurrency, 4);

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_module);

    if (!amcf->enable && !amcf->challenge) {
        return NGX_CONF_OK;
    }

    if (pmcf->data.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"%s\" needs \"portal_data\" in %s:%ui",
                      amcf->enable ? "portal_acme on" : "portal_acme_challenge on",
                      amcf->file, amcf->line);
        return NGX_CONF_ERROR;
    }

    /* the responder reads the state store, the engine writes it: nginx -t looks at it as a
     * worker would */

    if (!pmcf->state_checked) {
        if (ngx_http_portal_check_store(cf, pmcf, "state") != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        pmcf->state_checked = 1;
    }

    if (!amcf->enable) {
        return NGX_CONF_OK;
    }

    if (amcf->directory.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"portal_acme on\" needs \"portal_acme_directory\" in %s:%ui",
                      amcf->file, amcf->line);
        return NGX_CONF_ERROR;
    }

    if (amcf->ca_file.len
        && ngx_conf_full_name(cf->cycle, &amcf->ca_file, 1) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    c = &amcf->conf;

    c->data_dir = (const char *) pmcf->data.data;
    c->directory = ngx_http_portal_acme_cstr(&amcf->directory);
    c->contact = amcf->contact ? amcf->contact->elts : NULL;
    c->ncontact = amcf->contact ? amcf->contact->nelts : 0;
    c->ca_file = ngx_http_portal_acme_cstr(&amcf->ca_file);
    c->key_type = ngx_http_portal_acme_cstr(&amcf->key_type);
    c->cname_target = ngx_http_portal_acme_cstr(&amcf->cname_target);
    c->edge_addresses = amcf->edge_addresses ? amcf->edge_addresses->elts : NULL;
    c->nedge_addresses = amcf->edge_addresses ? amcf->edge_addresses->nelts : 0;
    c->resolver = ngx_http_portal_acme_cstr(&amcf->resolver);
    c->backoff = amcf->backoff ? amcf->backoff->elts : NULL;
    c->nbackoff = amcf->backoff ? amcf->backoff->nelts : 0;
    c->dns_recheck = (long) amcf->dns_recheck;
    c->concurrency = (int) amcf->concurrency;
    c->preferred_chain = ngx_http_portal_acme_cstr(&amcf->preferred_chain);
    c->profile = ngx_http_portal_acme_cstr(&amcf->profile);
    c->eab_kid = ngx_http_portal_acme_cstr(&amcf->eab_kid);
    c->eab_key_file = ngx_http_portal_acme_cstr(&amcf->eab_key_file);

    if (portal_acme_check(c, err, sizeof(err)) != 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "portal_acme: %s in %s:%ui",
                      err, amcf->file, amcf->line);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_portal_acme_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_portal_acme_main_conf_t  *amcf;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_acme_module);

    if (!amcf->challenge) {
        return NGX_OK;
    }

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_POST_READ_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_portal_acme_challenge_handler;

    return NGX_OK;
}


/* Called by ngx_http_portal_module's init_process before it opens its readers: the engine
 * opens the state store read-write, and the readers share that environment. */

ngx_int_t
ngx_http_portal_acme_init_process(ngx_cycle_t *cycle)
{
    ngx_http_portal_acme_main_conf_t  *amcf;
    u_char                             where[64];
    char                               err[PORTAL_ERRLEN];

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) {
        return NGX_OK;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_portal_acme_module);

    if (amcf == NULL || !amcf->enable) {
        return NGX_OK;
    }

    ngx_snprintf(where, sizeof(where), "nginx worker %P%Z", ngx_pid);

    amcf->acme = portal_acme_create(&amcf->conf, (char *) where, err, sizeof(err));

    if (amcf->acme == NULL) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "portal: acme: no ACME engine in this worker: %s", err);
        return NGX_OK;
    }

    amcf->tick.handler = ngx_http_portal_acme_tick;
    amcf->tick.data = amcf;
    amcf->tick.log = cycle->log;
    amcf->tick.cancelable = 1;      /* a graceful shutdown does not wait for it */

    ngx_add_timer(&amcf->tick, 1);

    return NGX_OK;
}


static void
ngx_http_portal_acme_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_portal_acme_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_portal_acme_module);

    if (amcf == NULL) {
        return;
    }

    if (amcf->acme) {
        /* stops and joins the thread: an order in progress resumes in the next engine */
        portal_acme_destroy(amcf->acme, ngx_http_portal_acme_log, cycle->log);
        amcf->acme = NULL;
    }

    if (amcf->state) {
        portal_state_close(amcf->state);
        amcf->state = NULL;
    }
}
