/*
 * llm_int.h - shared by the files of the `llm` action, not part of any
 * public contract.  The action itself is `cairn_action_llm` (llm.c).
 *
 * The action sends one chat request to a language model and returns its
 * reply.  The files split it by idea:
 *
 *   llm.c            the `with` fields, the three phases, retries, failures
 *   llm_openai.c     the OpenAI chat completions wire format
 *   llm_anthropic.c  the Anthropic messages wire format
 *   llm_http.c       one HTTP POST on libcurl, with deadline, stop and cap
 *
 * Threads: prepare builds the request JSON with jv and dumps it to text;
 * execute (a worker thread) sends text and keeps the reply's bytes; finish
 * parses and checks them with jv.  The job's compiled schema (jschema.h)
 * holds jv and is touched only by prepare, finish and discard.
 *
 * Structured replies (`schema`): OpenAI gets response_format {type:
 * json_schema, json_schema: {name: "reply", schema, strict: true}} and the
 * message content is the JSON text.  Anthropic has no such field, so the
 * request forces a tool: tools [{name: "reply", input_schema: schema}] and
 * tool_choice {type: tool, name: "reply"}; the tool_use block's input is the
 * reply (its compact JSON is `text`).  Both providers take only an object at
 * the root, so the schema must say type: object.  Either way the reply is
 * checked here against the schema again: a server that ignores the request
 * (many OpenAI-compatible ones do) cannot slip a wrong shape through.
 *
 * Failure kinds:
 *   schema     a bad `with`; a reply that is not JSON or does not match
 *              `schema` (the engine's retry may ask again)
 *   auth       HTTP 401 or 403
 *   status     any other non-2xx status; 429 and 5xx (Anthropic's 529
 *              "overloaded" included) only after CAIRN_LLM_MAX_TRIES
 *              requests, or when the wait asked for would pass the deadline
 *              or exceed CAIRN_LLM_RETRY_AFTER_MAX_MS
 *   protocol   a 2xx reply that is not the promised JSON (wrong content
 *              type, invalid or cut JSON, missing fields), or a broken HTTP
 *              exchange
 *   refused    the model declined (OpenAI's message.refusal)
 *   connect    no connection (refused, unresolvable, lost, connect time-out)
 *   tls        a TLS handshake or certificate failure
 *   timeout    the deadline passed: the step's, or `timeout` if sooner
 *   cancelled  stop requested
 *   size       the reply body passed CAIRN_LLM_BODY_MAX, or the request
 *              body CAIRN_LLM_REQUEST_MAX
 * The api_key never appears in a message or in the output: every occurrence
 * is replaced with "***".
 */
#ifndef CAIRN_LLM_INT_H
#define CAIRN_LLM_INT_H

#include <jv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "actions/action.h"
#include "actions/jschema.h"
#include "common/mem.h"

/* ---- limits ------------------------------------------------------------- */

#define CAIRN_LLM_MAX_TRIES 3                   /* requests per attempt on 429/5xx */
#define CAIRN_LLM_BODY_MAX (4 * 1024 * 1024)    /* bytes of a reply body kept */
#define CAIRN_LLM_REQUEST_MAX (16 * 1024 * 1024) /* bytes of a request body sent */
#define CAIRN_LLM_TIMEOUT_DEFAULT_MS (10 * 60 * 1000) /* with no timeout and no deadline */
#define CAIRN_LLM_CONNECT_TIMEOUT_MS 30000      /* to open the connection */
#define CAIRN_LLM_RETRY_DELAY_MS 500            /* first wait without retry-after; doubles */
#define CAIRN_LLM_RETRY_AFTER_MAX_MS 60000      /* longer waits are not waited: fail */
#define CAIRN_LLM_POLL_SLICE_MS 50              /* longest wait between stop checks */
#define CAIRN_LLM_ERROR_TEXT_MAX 400            /* bytes of a provider's error quoted */
#define CAIRN_LLM_MAX_TOKENS_DEFAULT 1024       /* Anthropic requires max_tokens */
#define CAIRN_LLM_CONTENT_TYPE_MAX 128
#define CAIRN_LLM_HEADERS_MAX 4                 /* provider headers in a request */

#define CAIRN_LLM_ANTHROPIC_VERSION "2023-06-01"
#define CAIRN_LLM_REPLY_NAME "reply"            /* json_schema name / forced tool name */

/* ---- providers ---------------------------------------------------------- */

/* What prepare read from `with`, checked, as jv (borrowed by build). */
typedef struct llm_req {
    jv model;                          /* string */
    jv system;                         /* string, or invalid */
    jv messages;                       /* array of {role, content} */
    jv schema;                         /* object, or invalid */
    jv temperature;                    /* number, or invalid */
    jv max_tokens;                     /* number, or invalid */
} llm_req;

/* What a provider found in a 2xx reply (owned by the caller). */
typedef struct llm_reply {
    jv text;                           /* string; with a schema, the JSON text */
    jv model, finish_reason;           /* string or null */
    jv input_tokens, output_tokens;    /* number or null */
} llm_reply;

typedef struct llm_provider {
    const char *name;
    const char *default_base_url;
    const char *path;                  /* appended to base_url */
    const char *auth_prefix;           /* the key's header, up to the key */
    const char *extra_header;          /* or NULL */
    const char *const *roles;          /* message roles allowed; NULL: any */
    const char *roles_hint;            /* said when a role is refused */
    jv (*build)(const llm_req *r);     /* the request body */
    /* Fill *out from body (borrowed); or -1 with f set (protocol, refused,
     * schema when `schema` was asked and no structured reply came). */
    int (*parse)(jv body, bool schema, llm_reply *out, cairn_fail *f);
} llm_provider;

extern const llm_provider cairn__llm_openai;
extern const llm_provider cairn__llm_anthropic;

/* obj[key] when it has kind k, else jv_invalid() (obj borrowed). */
jv cairn__llm_get(jv obj, const char *key, jv_kind k);

void cairn__llm_reply_free(llm_reply *r);

/* ---- HTTP (llm_http.c: no jv, runs on the worker thread) ---------------- */

typedef struct llm_http_resp {
    long status;
    char content_type[CAIRN_LLM_CONTENT_TYPE_MAX];  /* "" when none */
    int64_t retry_after_ms;            /* -1: the server said nothing */
    cairn_buf body;
} llm_http_resp;

typedef struct llm_http_req {
    const char *url;
    const char *const *headers;        /* "Name: value", NULL-terminated */
    const char *body;
    size_t body_len;
    int64_t deadline_ms;               /* CLOCK_MONOTONIC ms, never 0 */
    const cairn_stop *stop;
} llm_http_req;

/* POST req; returns 0 with *resp filled (any status), or -1 with f set
 * (connect, tls, timeout, cancelled, size, protocol).  *resp must be zeroed
 * or reset before; free it with cairn__llm_http_resp_free either way. */
int cairn__llm_http_post(const llm_http_req *req, llm_http_resp *resp, cairn_fail *f);

void cairn__llm_http_resp_free(llm_http_resp *r);

/* A retry-after value: delay-seconds, or an HTTP date compared with now;
 * returns milliseconds (0 for a date in the past), or -1 when unreadable. */
int64_t cairn__llm_retry_after_ms(const char *value, time_t now);

/* Wait ms in slices of CAIRN_LLM_POLL_SLICE_MS; returns 0, or -1 as soon as
 * a stop is requested. */
int cairn__llm_sleep(int64_t ms, const cairn_stop *stop);

/* ---- the job (llm.c) ---------------------------------------------------- */

/* One attempt: built by prepare, filled by execute, judged by finish. */
typedef struct llm_job {
    const llm_provider *prov;
    char *url;
    char *body;                        /* the request JSON */
    size_t body_len;
    char *headers[CAIRN_LLM_HEADERS_MAX + 1];   /* NULL-terminated; may hold the key */
    char *api_key;                     /* or NULL; scrubbed from every message */
    int64_t timeout_ms;                /* with.timeout; 0: none */
    cairn_jschema *schema;             /* or NULL; orchestrator thread only */
    /* execute's result */
    llm_http_resp resp;
    int requests;
    bool failed;                       /* fail holds a transport failure */
    cairn_fail fail;
    char gave_up[200];                 /* why a retryable status was not retried */
} llm_job;

#endif
