/*
 * ssh_hostkey.c - the server's host key against an OpenSSH known_hosts file.
 *
 * The file is read line by line into libssh2's collection, so one line
 * libssh2 cannot parse (an unknown key type, a certificate authority) is
 * skipped instead of hiding every line after it.  Lookups use OpenSSH's
 * names: "host" for port 22, "[host]:port" otherwise (a plain entry does not
 * cover another port); hashed names (|1|salt|hash) match too.
 *
 * Before the handshake, the key types known for the host go first in the
 * host key algorithm preference, so a host known by its RSA key is not
 * offered an ed25519 exchange it would then fail as "unknown".
 */
#include "actions/ssh_int.h"
#include "common/mem.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define KNOWN_NAME_MAX (CAIRN_SSH_HOST_MAX + 16)

static const struct key_kind {
    int hostkey_type;                  /* LIBSSH2_HOSTKEY_TYPE_* */
    int known_mask;                    /* LIBSSH2_KNOWNHOST_KEY_* */
    const char *name;                  /* the algorithm name */
} key_kinds[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa"},
    {LIBSSH2_HOSTKEY_TYPE_DSS, LIBSSH2_KNOWNHOST_KEY_SSHDSS, "ssh-dss"},
};
#define N_KINDS (sizeof key_kinds / sizeof key_kinds[0])

static const struct key_kind *kind_of_type(int type) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (key_kinds[i].hostkey_type == type) return &key_kinds[i];
    return NULL;
}

static const struct key_kind *kind_of_name(const char *name) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (strcmp(key_kinds[i].name, name) == 0) return &key_kinds[i];
    return NULL;
}

/* The name OpenSSH files the host under, lower-cased. */
static void known_name(const ssh_job *j, char *out, size_t outlen) {
    if (j->port == 22) snprintf(out, outlen, "%s", j->host);
    else snprintf(out, outlen, "[%s]:%d", j->host, j->port);
    for (char *p = out; *p; p++) *p = (char)tolower((unsigned char)*p);
}

/* Whether known_hosts holds a key of this kind for the host: a key no
 * entry can hold is checked, and "mismatch" means such an entry exists. */
static bool kind_known(ssh_conn *c, const char *name, const struct key_kind *k) {
    return libssh2_knownhost_checkp(c->known, name, -1, "", 1,
                                    LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                        k->known_mask,
                                    NULL) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH;
}

/* The kinds known for the host, as "ssh-rsa, ssh-ed25519" ("" when none). */
static void known_kinds(ssh_conn *c, const char *name, cairn_buf *out) {
    for (size_t i = 0; i < N_KINDS; i++)
        if (kind_known(c, name, &key_kinds[i]))
            cairn_buf_printf(out, "%s%s", out->len ? ", " : "", key_kinds[i].name);
}

static void prefer_known(ssh_conn *c) {
    char name[KNOWN_NAME_MAX];
    const char **algs = NULL;
    known_name(c->job, name, sizeof name);
    int n = libssh2_session_supported_algs(c->s, LIBSSH2_METHOD_HOSTKEY, &algs);
    cairn_buf first = CAIRN_BUF_INIT, rest = CAIRN_BUF_INIT;
    for (int i = 0; i < n; i++) {
        const struct key_kind *k = kind_of_name(algs[i]);
        cairn_buf *to = k && kind_known(c, name, k) ? &first : &rest;
        cairn_buf_printf(to, "%s%s", to->len ? "," : "", algs[i]);
    }
    if (first.len && rest.len) cairn_buf_printf(&first, ",%s", rest.data);
    if (first.len) libssh2_session_method_pref(c->s, LIBSSH2_METHOD_HOSTKEY, first.data);
    if (n > 0) libssh2_free(c->s, algs);
    cairn_buf_free(&first);
    cairn_buf_free(&rest);
}

/* "@revoked hosts type base64 ...": keep the key. */
static void add_revoked(ssh_conn *c, const char *line) {
    char type[64], key[16384];
    if (sscanf(line, "@revoked %*s %63s %16383s", type, key) == 2)
        cairn_buf_printf(&c->revoked, "%s\n", key);
}

static void read_line(ssh_conn *c, char *line, size_t len) {
    const char *p = line;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '\0' || *p == '\n' || *p == '#') return;
    if (strncmp(p, "@revoked", 8) == 0 && (p[8] == ' ' || p[8] == '\t')) {
        add_revoked(c, p);
        return;
    }
    if (*p == '@') return;             /* @cert-authority: not supported, skipped */
    /* a line libssh2 cannot parse is skipped on purpose */
    libssh2_knownhost_readline(c->known, line, len, LIBSSH2_KNOWNHOST_FILE_OPENSSH);
}

int ssh__hostkey_load(ssh_conn *c) {
    const ssh_job *j = c->job;
    struct stat st;
    FILE *fp = fopen(j->known_hosts, "re");
    if (fp == NULL)
        return ssh__fail(c->job, "auth", "cannot read known_hosts %s: %s; nothing was sent "
                                         "to %s", j->known_hosts, strerror(errno), c->where);
    if (fstat(fileno(fp), &st) == 0 && st.st_size > CAIRN_SSH_KNOWN_HOSTS_MAX) {
        fclose(fp);
        return ssh__fail(c->job, "auth", "known_hosts %s is larger than %d bytes",
                         j->known_hosts, CAIRN_SSH_KNOWN_HOSTS_MAX);
    }
    c->known = libssh2_knownhost_init(c->s);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, fp)) > 0) read_line(c, line, (size_t)n);
    free(line);
    fclose(fp);
    prefer_known(c);
    return 0;
}

/* ---- checking ----------------------------------------------------------- */

static char *base64(const unsigned char *p, size_t n) {
    char *out = cairn_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    return out;
}

/* OpenSSH's fingerprint: SHA256: and the unpadded base64 of the digest. */
static void fingerprint(const char *key, size_t len, char *out, size_t outlen) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL);
    char *b64 = base64(md, mdlen);
    b64[strcspn(b64, "=")] = '\0';
    snprintf(out, outlen, "SHA256:%s", b64);
    free(b64);
}

static bool is_revoked(ssh_conn *c, const char *key, size_t len) {
    if (c->revoked.len == 0) return false;
    char *b64 = base64((const unsigned char *)key, len);
    bool hit = false;
    for (const char *p = c->revoked.data; *p && !hit; p = strchr(p, '\n') + 1)
        hit = strncmp(p, b64, strlen(b64)) == 0 && p[strlen(b64)] == '\n';
    free(b64);
    return hit;
}

static int unknown_host(ssh_conn *c, const char *name) {
    const ssh_job *j = c->job;
    cairn_buf kinds = CAIRN_BUF_INIT;
    known_kinds(c, name, &kinds);
    ssh__fail(c->job, "auth",
              "host %s is not in known_hosts %s (the server offered %s key %s)%s%s%s; check "
              "the fingerprint, then add the key (e.g. ssh-keyscan -p %d -t %s %s >> %s); no "
              "credentials were sent and nothing ran", name, j->known_hosts, j->key_type,
              j->fingerprint, kinds.len ? "; known_hosts has only " : "",
              kinds.len ? kinds.data : "", kinds.len ? " keys for it" : "", j->port,
              j->key_type, j->host, j->known_hosts);
    cairn_buf_free(&kinds);
    return -1;
}

int ssh__hostkey_check(ssh_conn *c) {
    ssh_job *j = c->job;
    char name[KNOWN_NAME_MAX];
    size_t len = 0;
    int type = 0;
    const char *key = libssh2_session_hostkey(c->s, &len, &type);
    if (key == NULL) return ssh__fail(j, "protocol", "%s sent no host key", c->where);
    const struct key_kind *k = kind_of_type(type);
    fingerprint(key, len, j->fingerprint, sizeof j->fingerprint);
    snprintf(j->key_type, sizeof j->key_type, "%s", k ? k->name : "unknown");
    if (j->insecure) return 0;
    if (is_revoked(c, key, len))
        return ssh__fail(j, "auth", "the host key of %s (%s %s) is marked @revoked in %s; no "
                                    "credentials were sent and nothing ran", c->where,
                         j->key_type, j->fingerprint, j->known_hosts);
    known_name(j, name, sizeof name);
    int rc = libssh2_knownhost_checkp(c->known, name, -1, key, len,
                                      LIBSSH2_KNOWNHOST_TYPE_PLAIN |
                                          LIBSSH2_KNOWNHOST_KEYENC_RAW |
                                          (k ? k->known_mask : LIBSSH2_KNOWNHOST_KEY_UNKNOWN),
                                      NULL);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MATCH) return 0;
    if (rc == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND) return unknown_host(c, name);
    if (rc == LIBSSH2_KNOWNHOST_CHECK_MISMATCH)
        return ssh__fail(j, "auth",
                         "host key of %s CHANGED: the server offered %s key %s, which does not "
                         "match known_hosts %s; the host may have been reinstalled, or someone "
                         "may be intercepting the connection; no credentials were sent and "
                         "nothing ran", name, j->key_type, j->fingerprint, j->known_hosts);
    return ssh__fail(j, "auth", "cannot check the host key of %s (%s %s) against %s", name,
                     j->key_type, j->fingerprint, j->known_hosts);
}
