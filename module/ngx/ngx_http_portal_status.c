/*
 * ngx_http_portal_status_module: "portal_status;" in a location answers with the status of
 * every portal domain (lifecycle, certificate, last ACME problem, next attempt), the engine
 * and the snapshot: JSON, or Prometheus text with ?format=prometheus. Built by the core
 * library from the worker's own read transactions; it never shows key material.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_portal.h"
#include "portal_acme.h"


typedef struct {
    portal_status_t           *status;          /* per worker, opened at first use */
    time_t                     reopen_at;
} ngx_http_portal_status_main_conf_t;


static ngx_int_t ngx_http_portal_status_handler(ngx_http_request_t *r);
static char *ngx_http_portal_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static void *ngx_http_portal_status_create_main_conf(ngx_conf_t *cf);
static void ngx_http_portal_status_exit_process(ngx_cycle_t *cycle);


static ngx_command_t  ngx_http_portal_status_commands[] = {

    { ngx_string("portal_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_portal_status,
      0,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_portal_status_module_ctx = {
    NULL,                                    /* preconfiguration */
    NULL,                                    /* postconfiguration */

    ngx_http_portal_status_create_main_conf, /* create main configuration */
    NULL,                                    /* init main configuration */

    NULL,                                    /* create server configuration */
    NULL,                                    /* merge server configuration */

    NULL,                                    /* create location configuration */
    NULL                                     /* merge location configuration */
};


ngx_module_t  ngx_http_portal_status_module = {
    NGX_MODULE_V1,
    &ngx_http_portal_status_module_ctx,    /* module context */
    ngx_http_portal_status_commands,       /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_portal_status_exit_process,   /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_portal_status_handler(ngx_http_request_t *r)
{
    ngx_int_t                            rc;
    ngx_str_t                            format;
    ngx_buf_t                           *b;
    ngx_uint_t                           prometheus;
    ngx_chain_t                          out;
    portal_str_t                         text;
    ngx_uint_t                           i;
    unsigned long long                   requests[2], *counts;
    ngx_http_portal_main_conf_t         *pmcf;
    ngx_http_portal_status_main_conf_t  *smcf;
    char                                 err[PORTAL_ERRLEN];

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    prometheus = 0;

    if (ngx_http_arg(r, (u_char *) "format", 6, &format) == NGX_OK) {
        if (format.len == 10 && ngx_strncmp(format.data, "prometheus", 10) == 0) {
            prometheus = 1;

        } else if (!(format.len == 4 && ngx_strncmp(format.data, "json", 4) == 0)) {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    pmcf = ngx_http_get_module_main_conf(r, ngx_http_portal_module);
    smcf = ngx_http_get_module_main_conf(r, ngx_http_portal_status_module);

    if (smcf->status == NULL) {
        if (ngx_time() < smcf->reopen_at) {
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }

        smcf->status = portal_status_open((char *) pmcf->data.data, err, sizeof(err));

        if (smcf->status == NULL) {
            smcf->reopen_at = ngx_time() + NGX_HTTP_PORTAL_REOPEN_DELAY;
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0, "portal_status: %s", err);
            return NGX_HTTP_SERVICE_UNAVAILABLE;
        }
    }

    counts = NULL;

    if (pmcf->counters) {
        requests[0] = 0;
        requests[1] = 0;

        for (i = 0; i < NGX_HTTP_PORTAL_COUNTER_SLOTS; i++) {
            requests[0] += pmcf->counters[i].hit;
            requests[1] += pmcf->counters[i].miss;
        }

        counts = requests;
    }

    if (portal_status_render(smcf->status, (int) prometheus, counts, ngx_http_portal_alloc,
                             r->pool, &text, err, sizeof(err))
        != 0)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "portal_status: %s", err);

        /* start afresh at the next request */
        portal_status_close(smcf->status);
        smcf->status = NULL;

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = text.len;

    if (prometheus) {
        ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");

    } else {
        ngx_str_set(&r->headers_out.content_type, "application/json");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) text.data;
    b->last = b->pos + text.len;
    b->memory = 1;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static char *
ngx_http_portal_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_module);

    if (pmcf->data.data == NULL) {
        return "needs \"portal_data\" before it in the http block";
    }

    if (!pmcf->state_checked) {
        if (ngx_http_portal_check_store(cf, pmcf, "state") != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        pmcf->state_checked = 1;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_portal_status_handler;

    return NGX_CONF_OK;
}


static void *
ngx_http_portal_status_create_main_conf(ngx_conf_t *cf)
{
    /*
     * set by ngx_pcalloc():
     *
     *     smcf->status = NULL;
     *     smcf->reopen_at = 0;
     */

    return ngx_pcalloc(cf->pool, sizeof(ngx_http_portal_status_main_conf_t));
}


static void
ngx_http_portal_status_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_portal_status_main_conf_t  *smcf;

    smcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_portal_status_module);

    if (smcf && smcf->status) {
        portal_status_close(smcf->status);
        smcf->status = NULL;
    }
}
