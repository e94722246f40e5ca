/*
 * Approval links as `cairn serve` issues and spends them (server/linkpage.h),
 * on a real journal: links for the persons an approval names, none for a
 * group; a link spent once stays spent for a second server on the same
 * journal and after a restart; an altered or expired one is refused.
 */
#include "server/linkpage.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"
#include "test.h"

#define PUBLIC "https://cairn.example.test/"

static srv_backend *backend_at(const char *db) {
    srv_backend_config cfg = {.db_path = db, .sync = CAIRN_SYNC_FULL};
    srv_backend *b = NULL;
    cairn_err err;
    if (srv_backend_open(&cfg, &b, &err) != 0) TEST_FAIL("backend: %s", err.msg);
    return b;
}

static srv_links *links_of(srv_backend *b, const char *url) {
    srv_links *l = NULL;
    cairn_err err;
    if (srv_links_new(b, url, &l, &err) != 0) TEST_FAIL("links: %s", err.msg);
    return l;
}

/* The token of name's link among links (an object {NAME: URL}), the caller's. */
static char *token_of(jv links, const char *name) {
    jv url = jv_object_get(jv_copy(links), jv_string(name));
    if (jv_get_kind(url) != JV_KIND_STRING) TEST_FAIL("no link for %s", name);
    const char *u = jv_string_value(url);
    CHECK(strncmp(u, PUBLIC "approve/", strlen(PUBLIC "approve/")) == 0);
    char *t = cairn_strdup(u + strlen(PUBLIC "approve/"));
    jv_free(url);
    return t;
}

/* check's verdict on token now, clearing what it gave. */
static int verdict(srv_links *l, const char *token, int64_t now_s) {
    cairn_applink link;
    char *spent = NULL;
    cairn_err err;
    int v = srv_links_check(l, token, now_s, &link, &spent, &err);
    free(spent);
    cairn_applink_clear(&link);
    return v;
}

/* Spend token (it must verify) for decision: the spend's result. */
static int spend(srv_links *l, const char *token, char **held) {
    cairn_applink link;
    cairn_err err;
    char *spent = NULL;
    int v = srv_links_check(l, token, cairn_wall_ms() / 1000, &link, &spent, &err);
    free(spent);
    int rc = v == CAIRN_APPLINK_OK ? srv_links_spend(l, &link, "approve", held, &err) : -100 - v;
    cairn_applink_clear(&link);
    return rc;
}

TEST(linkpage_links_go_to_the_persons_named_not_to_groups) {
    char *db = cairn_sprintf("%s/issue.db", test_tmpdir());
    srv_backend *b = backend_at(db);
    srv_links *l = links_of(b, PUBLIC), *none = links_of(b, NULL);
    jv approvers = jv_parse("[\"ann\", \"group:oncall\", \"bo\", 7]");
    int64_t exp = cairn_wall_ms() + 3600 * 1000;
    jv got = srv_links_issue(l, "r1", "gate", approvers, exp);
    jv keys = jv_keys(jv_copy(got));
    jv text = jv_dump_string(keys, 0);
    CHECK_STR(jv_string_value(text), "[\"ann\",\"bo\"]");
    char *ann = token_of(got, "ann");
    CHECK_INT(verdict(l, ann, cairn_wall_ms() / 1000), CAIRN_APPLINK_OK);
    CHECK_INT(verdict(l, ann, exp / 1000 + 1), CAIRN_APPLINK_EXPIRED);
    jv empty = srv_links_issue(none, "r1", "gate", approvers, exp);
    CHECK_INT(jv_object_length(empty), 0);   /* no --public-url: no links */
    cairn_err err;
    srv_links *bad = NULL;
    CHECK_INT(srv_links_new(b, "ftp://x", &bad, &err), CAIRN_EINVAL);
    CHECK_INT(srv_links_new(b, "https://x/?a=b", &bad, &err), CAIRN_EINVAL);
    free(ann);
    jv_free(text);
    jv_free(got);
    jv_free(approvers);
    srv_links_free(l);
    srv_links_free(none);
    srv_backend_close(b);
    free(db);
}

TEST(linkpage_a_link_is_spent_once_across_servers_and_restarts) {
    char *db = cairn_sprintf("%s/spend.db", test_tmpdir());
    srv_backend *b1 = backend_at(db), *b2 = backend_at(db);
    srv_links *l1 = links_of(b1, PUBLIC), *l2 = links_of(b2, PUBLIC);
    jv approvers = jv_parse("[\"ann\", \"bo\"]");
    jv got = srv_links_issue(l1, "r2", "gate", approvers, cairn_wall_ms() + 3600 * 1000);
    char *ann = token_of(got, "ann"), *bo = token_of(got, "bo"), *held = NULL;
    int64_t now = cairn_wall_ms() / 1000;
    /* the second server checks what the first issued: one key per journal */
    CHECK_INT(verdict(l2, ann, now), CAIRN_APPLINK_OK);
    CHECK_INT(spend(l1, ann, &held), 0);
    CHECK(held == NULL);
    CHECK_INT(verdict(l1, ann, now), CAIRN_APPLINK_SPENT);
    CHECK_INT(verdict(l2, ann, now), CAIRN_APPLINK_SPENT);
    CHECK_INT(spend(l2, ann, &held), -100 - CAIRN_APPLINK_SPENT);
    CHECK_INT(verdict(l2, bo, now), CAIRN_APPLINK_OK);   /* each link its own nonce */
    srv_links_free(l1);
    srv_links_free(l2);
    srv_backend_close(b1);
    srv_backend_close(b2);
    /* a restart: the spent nonce is in the journal, not in memory */
    srv_backend *b3 = backend_at(db);
    srv_links *l3 = links_of(b3, PUBLIC);
    CHECK_INT(verdict(l3, ann, now), CAIRN_APPLINK_SPENT);
    cairn_applink link;
    cairn_err err;
    char *spent = NULL;
    CHECK_INT(cairn_applink_verify((const unsigned char *)"", 0, ann, now, &link), CAIRN_APPLINK_MALFORMED);
    CHECK_INT(srv_links_check(l3, bo, now, &link, &spent, &err), CAIRN_APPLINK_OK);
    CHECK_INT(srv_links_spend(l3, &link, "reject", &held, &err), 0);
    CHECK_INT(srv_links_spend(l3, &link, "approve", &held, &err), CAIRN_EEXISTS);
    CHECK(held && strstr(held, "\"decision\":\"reject\"") && strstr(held, "\"by\":\"bo\""));
    cairn_applink_clear(&link);
    /* altered: one character of what was signed changed */
    bo[5] = bo[5] == 'A' ? 'B' : 'A';
    CHECK_INT(verdict(l3, bo, now), CAIRN_APPLINK_FORGED);
    free(held);
    free(ann);
    free(bo);
    jv_free(got);
    jv_free(approvers);
    srv_links_free(l3);
    srv_backend_close(b3);
    free(db);
}
