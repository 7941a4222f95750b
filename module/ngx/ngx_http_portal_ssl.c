
/*
 * TLS for every portal domain: the certificate is picked at the handshake by SNI from the
 * state store (through the core's per-worker cache), with the server's own ssl_certificate
 * as the fallback; no reload when a certificate changes.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_portal.h"


#if (NGX_HTTP_SSL)

static int ngx_http_portal_ssl_certificate(ngx_ssl_conn_t *ssl_conn, void *data);
static int ngx_http_portal_ssl_servername(ngx_ssl_conn_t *ssl_conn, int *ad,
    void *arg);
static size_t ngx_http_portal_ssl_name(ngx_ssl_conn_t *ssl_conn, u_char *host);


char *
ngx_http_portal_ssl_merge(ngx_conf_t *cf, ngx_http_portal_srv_conf_t *pscf)
{
    ngx_http_ssl_srv_conf_t      *sscf;
    ngx_http_portal_main_conf_t  *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_portal_module);
    sscf = ngx_http_conf_get_module_srv_conf(cf, ngx_http_ssl_module);

    if (pmcf->data.data == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"portal_ssl on\" needs \"portal_data\" in the http block "
                      "in %s:%ui", pscf->ssl_file, pscf->ssl_line);
        return NGX_CONF_ERROR;
    }

    if (sscf == NULL || sscf->ssl.ctx == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"portal_ssl on\" needs an ssl listener and an "
                      "\"ssl_certificate\" (the fallback) in %s:%ui",
                      pscf->ssl_file, pscf->ssl_line);
        return NGX_CONF_ERROR;
    }

    if (sscf->certificate_values) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"portal_ssl on\" and variables in \"ssl_certificate\" "
                      "both pick certificates at the handshake; use one in %s:%ui",
                      pscf->ssl_file, pscf->ssl_line);
        return NGX_CONF_ERROR;
    }

    SSL_CTX_set_cert_cb(sscf->ssl.ctx, ngx_http_portal_ssl_certificate, NULL);
    SSL_CTX_set_tlsext_servername_callback(sscf->ssl.ctx,
                                           ngx_http_portal_ssl_servername);

    pmcf->ssl_used = 1;

    return NGX_CONF_OK;
}


/* After every "listen" is known (postconfiguration): each portal_ssl server has an ssl one. */

ngx_int_t
ngx_http_portal_ssl_check_listen(ngx_conf_t *cf)
{
    ngx_uint_t                   s, p, a, k, found;
    ngx_http_conf_port_t        *port;
    ngx_http_conf_addr_t        *addr;
    ngx_http_core_srv_conf_t   **cscfp, **server;
    ngx_http_core_main_conf_t   *cmcf;
    ngx_http_portal_srv_conf_t  *pscf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;

    for (s = 0; s < cmcf->servers.nelts; s++) {
        pscf = cscfp[s]->ctx->srv_conf[ngx_http_portal_module.ctx_index];

        if (!pscf->ssl) {
            continue;
        }

        found = 0;
        port = cmcf->ports ? cmcf->ports->elts : NULL;

        for (p = 0; port && p < cmcf->ports->nelts && !found; p++) {
            addr = port[p].addrs.elts;

            for (a = 0; a < port[p].addrs.nelts && !found; a++) {
                if (!addr[a].opt.ssl) {
                    continue;
                }

                server = addr[a].servers.elts;

                for (k = 0; k < addr[a].servers.nelts; k++) {
                    if (server[k] == cscfp[s]) {
                        found = 1;
                        break;
                    }
                }
            }
        }

        if (!found) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"portal_ssl on\" needs an ssl listener "
                          "(\"listen ... ssl\") in %s:%ui",
                          pscf->ssl_file, pscf->ssl_line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The worker's certificate cache, opened on first use and again after a failure. */

portal_certs_t *
ngx_http_portal_ssl_certs(ngx_http_portal_main_conf_t *pmcf, ngx_log_t *log)
{
    char  err[PORTAL_ERRLEN];

    if (pmcf->certs || ngx_time() < pmcf->certs_reopen_at) {
        return pmcf->certs;
    }

    pmcf->certs = portal_certs_open((char *) pmcf->data.data, pmcf->ssl_cache, err,
                                    sizeof(err));

    if (pmcf->certs == NULL) {
        pmcf->certs_reopen_at = ngx_time() + NGX_HTTP_PORTAL_REOPEN_DELAY;
        ngx_log_error(NGX_LOG_ALERT, log, 0,
                      "portal state store unavailable, serving the fallback "
                      "certificate: %s", err);
    }

    return pmcf->certs;
}


static int
ngx_http_portal_ssl_certificate(ngx_ssl_conn_t *ssl_conn, void *data)
{
    char                          err[PORTAL_ERRLEN];
    u_char                        host[PORTAL_MAX_HOST_LEN];
    size_t                        len;
    portal_certs_t               *certs;
    ngx_connection_t             *c;
    ngx_http_portal_main_conf_t  *pmcf;

    c = ngx_ssl_get_connection(ssl_conn);

    if (c->ssl->handshaked) {
        return 1;
    }

    /* no SNI, or an IP literal: the server's own certificate */

    len = ngx_http_portal_ssl_name(ssl_conn, host);
    if (len == 0) {
        return 1;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_portal_module);

    certs = ngx_http_portal_ssl_certs(pmcf, c->log);
    if (certs == NULL) {
        return 1;
    }

    switch (portal_certs_use(certs, ssl_conn, (char *) host, len, err, sizeof(err))) {

    case PORTAL_CERT_USED:
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "portal: certificate of \"%*s\"", len, host);
        break;

    case PORTAL_CERT_NONE:
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "portal: no certificate for \"%*s\", fallback", len, host);
        break;

    case PORTAL_CERT_MALFORMED:
        if (err[0]) {
            ngx_log_error(NGX_LOG_ERR, c->log, 0,
                          "portal domain \"%*s\": %s; serving the fallback "
                          "certificate", len, host, err);
        }
        break;

    default: /* PORTAL_CERT_ERROR */
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "portal domain \"%*s\": certificate lookup failed, serving "
                      "the fallback certificate: %s", len, host, err);

        portal_certs_close(pmcf->certs);
        pmcf->certs = NULL;
        pmcf->certs_reopen_at = ngx_time() + NGX_HTTP_PORTAL_REOPEN_DELAY;
        break;
    }

    return 1;
}


/* nginx picks the virtual server first; then, for "portal_ssl_unknown reject", a name with
 * no certificate ends the handshake with the unrecognized_name alert (RFC 6066 3). */

static int
ngx_http_portal_ssl_servername(ngx_ssl_conn_t *ssl_conn, int *ad, void *arg)
{
    int                           rc;
    char                          err[PORTAL_ERRLEN];
    u_char                        host[PORTAL_MAX_HOST_LEN];
    size_t                        len;
    portal_certs_t               *certs;
    ngx_connection_t             *c;
    ngx_http_connection_t        *hc;
    ngx_http_portal_srv_conf_t   *pscf;
    ngx_http_portal_main_conf_t  *pmcf;

    rc = ngx_http_ssl_servername(ssl_conn, ad, arg);

    if (rc != SSL_TLSEXT_ERR_OK) {
        return rc;
    }

    c = ngx_ssl_get_connection(ssl_conn);

    if (c->ssl->handshaked) {
        return rc;
    }

    hc = c->data;
    pscf = ngx_http_get_module_srv_conf(hc->conf_ctx, ngx_http_portal_module);

    if (!pscf->ssl || pscf->ssl_unknown != NGX_HTTP_PORTAL_SSL_REJECT) {
        return rc;
    }

    len = ngx_http_portal_ssl_name(ssl_conn, host);
    if (len == 0) {
        return rc;
    }

    pmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle, ngx_http_portal_module);

    certs = ngx_http_portal_ssl_certs(pmcf, c->log);
    if (certs == NULL) {
        return rc;
    }

    switch (portal_certs_has(certs, (char *) host, len, err, sizeof(err))) {

    case 0:
        ngx_log_debug2(NGX_LOG_DEBUG_EVENT, c->log, 0,
                       "portal: no certificate for \"%*s\", handshake rejected",
                       len, host);
        *ad = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;

    case 1:
        return rc;

    default:
        ngx_log_error(NGX_LOG_ALERT, c->log, 0,
                      "portal domain \"%*s\": certificate lookup failed: %s",
                      len, host, err);
        return rc;
    }
}


/* The canonical SNI name, or 0 when there is none or it is no hostname. */

static size_t
ngx_http_portal_ssl_name(ngx_ssl_conn_t *ssl_conn, u_char *host)
{
    size_t       len;
    const char  *name;

    name = SSL_get_servername(ssl_conn, TLSEXT_NAMETYPE_host_name);
    if (name == NULL) {
        return 0;
    }

    if (portal_host_canonical(name, ngx_strlen(name), (char *) host, &len)
        != PORTAL_HOST_OK)
    {
        return 0;
    }

    return len;
}


/* On a portal_ssl server, a request for another host than the handshake's SNI name gets
 * 421: never the other domain's context over this domain's certificate. */

ngx_uint_t
ngx_http_portal_ssl_sni_differs(ngx_http_request_t *r, ngx_str_t *host)
{
    u_char                       sni[PORTAL_MAX_HOST_LEN];
    size_t                       len;
    ngx_http_portal_srv_conf_t  *pscf;

    pscf = ngx_http_get_module_srv_conf(r, ngx_http_portal_module);

    if (!pscf->ssl
        || SSL_get_servername(r->connection->ssl->connection,
                              TLSEXT_NAMETYPE_host_name)
           == NULL)
    {
        return 0;
    }

    len = ngx_http_portal_ssl_name(r->connection->ssl->connection, sni);

    if (len == host->len && ngx_memcmp(sni, host->data, len) == 0) {
        return 0;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "portal: host \"%V\" differs from the TLS server name",
                  &r->headers_in.server);

    return 1;
}

#endif /* NGX_HTTP_SSL */
