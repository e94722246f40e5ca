/*
 * linkpage.h - approval links in `cairn serve`: issuing them when an
 * approval opens, and the page that opening one shows.
 *
 * Issuing.  With a public URL (`cairn serve --public-url URL`), each person
 * an approval names in `approvers` (not a `group:` entry: a group's members
 * decide with their tokens, through the API or the console) gets a link
 * URL/approve/TOKEN, TOKEN signed (applink.h) for that run, step and name
 * under the key the journal derives for links (CAIRN_LINKPAGE_KEY_PURPOSE),
 * so every server on the journal checks what any of them issued, also
 * after a restart.  Without a public URL none are made.
 *
 * The page.  GET /approve/TOKEN shows the run, the step, its prompt and
 * the run's inputs with Approve and Reject buttons: a form that POSTs to
 * the page's own URL (decision=approve|reject, comment; no action named, so
 * a proxy may serve the page under a path of its own).  No cookie and no
 * script: what authorises the POST is the link itself in its URL, which a
 * page elsewhere cannot know, so there is nothing for a cross-site request
 * to borrow.  GET changes nothing (chat clients fetch links to preview them).
 * The POST spends the link's nonce as the journal claim ("applink", NONCE)
 * before the decision is handed to the engine, so a link decides once, over
 * restarts and across servers; it is recorded under the link's name, with
 * "via": "link", for whichever server holds the run (backend.h,
 * srv_backend_decide_anywhere).  Everything shown is HTML-escaped (prompts and inputs come
 * from alerts), and the page forbids framing, scripts and referrers (the
 * token is in its URL).
 *
 * Answers: 200 the page or the decision taken; 400 a bad form; 403 a link
 * altered or not signed here, or a name the approval refuses (self-
 * approval); 404 no such run; 405 another method; 409 the approval is
 * decided or the run ended; 410 a link expired or used; 413 a comment
 * longer than CAIRN_LINKPAGE_COMMENT_MAX.  Each is a page saying why, and
 * decides nothing.
 *
 * Threads: issue runs on the engine's orchestrator (engine.h,
 * cairn_links_cb), handle on the HTTP server's threads; neither blocks the
 * other.  Memory: a srv_links borrows the backend, which must outlive it.
 */
#ifndef CAIRN_SERVER_LINKPAGE_H
#define CAIRN_SERVER_LINKPAGE_H

#include <jv.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "server/applink.h"
#include "server/backend.h"
#include "server/http.h"

#define CAIRN_LINKPAGE_PREFIX "/approve/"
#define CAIRN_LINKPAGE_KEY_PURPOSE "cairn approval links"
#define CAIRN_LINKPAGE_SPACE "applink"         /* the claims' space of spent nonces */
#define CAIRN_LINKPAGE_COMMENT_MAX 4096        /* bytes of a comment given on the page */
#define CAIRN_LINKPAGE_URL_MAX 512             /* bytes of --public-url */

typedef struct srv_links srv_links;

/* 0 when url may be a public URL (below); else CAIRN_EINVAL saying why. */
int srv_links_check_url(const char *url, cairn_err *err);

/* Links for backend b's journal.  public_url (http:// or https://, no
 * query or fragment; NULL: none are issued) is where clients reach this
 * server.  CAIRN_EINVAL for a bad URL; the journal's key errors. */
int srv_links_new(srv_backend *b, const char *public_url, srv_links **out, cairn_err *err);
void srv_links_free(srv_links *l);

/* cairn_links_cb (engine.h): {NAME: URL} for the persons of approvers
 * (borrowed), expiring at expires_ms; {} without a public URL. */
jv srv_links_issue(srv_links *l, const char *run_id, const char *step, jv approvers,
                   int64_t expires_ms);

/* The URL base_url/approve/TOKEN of a link for name to decide step of
 * run_id until expires_ms, signed under key (the journal's key derived for
 * CAIRN_LINKPAGE_KEY_PURPOSE): what srv_links_issue gives each approver, and
 * `cairn approval-link` one.  *url is the caller's.  CAIRN_EINVAL for a bad
 * base_url, a `group:` name or a field applink.h refuses. */
int srv_links_url(const unsigned char key[CAIRN_HASH_LEN], const char *base_url,
                  const char *run_id, const char *step, const char *name, int64_t expires_ms,
                  char **url, cairn_err *err);

/* What token is worth at now_s: cairn_applink_verify's verdict, or SPENT
 * when the journal holds its nonce as spent (*spent, the caller's: the
 * spending's record {run, step, by, decision, at}).  *out as verify leaves
 * it (cairn_applink_clear).  -1 with err when the journal cannot say. */
int srv_links_check(srv_links *l, const char *token, int64_t now_s, cairn_applink *out,
                    char **spent, cairn_err *err);

/* Spend link (verified) for decision, durably, once for all servers on
 * the journal: 0 the first time; CAIRN_EEXISTS after (*spent as above);
 * the journal's errors. */
int srv_links_spend(srv_links *l, const cairn_applink *link, const char *decision, char **spent,
                    cairn_err *err);

/* Whether path is the page's (under CAIRN_LINKPAGE_PREFIX). */
bool srv_links_route(const char *path);

/* Answer a request for the page (any method). */
void srv_links_handle(srv_links *l, const srv_req *q, srv_resp *r);

#endif
