/*
 * inbox.c - the orchestrator's mailbox: what the writer, the workers and
 * signal handlers tell it, in order, and the calls other threads make onto
 * it (cairn_engine_call).
 *
 * `mail` says the inbox has mail; the eventfd wakes an orchestrator that
 * sleeps in poll.  A poster writes the eventfd only when the orchestrator
 * says it may sleep (`sleeping`): while it runs or spins, `mail` is enough,
 * and each step saves two system calls.  Both sides store their flag, then
 * read the other's (sequentially consistent), so either the poster sees
 * `sleeping` and writes, or the orchestrator sees `mail` and does not sleep.
 * A stale `mail` costs one empty turn of the loop, never a lost message.
 */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/mem.h"
#include "engine/engine_int.h"

struct eng_inbox {
    pthread_mutex_t mu;
    eng_msg *head, *tail;
    int wake_fd;                 /* eventfd: the inbox has mail, or stop */
    atomic_int mail;             /* the inbox has mail: read while spinning */
    atomic_int sleeping;         /* the orchestrator may sleep in poll: posters write wake_fd */
    eng_spinner spin;            /* the orchestrator's, for mail */
};

eng_inbox *eng_inbox_new(void) {
    eng_inbox *ib = cairn_calloc(1, sizeof *ib);
    pthread_mutex_init(&ib->mu, NULL);
    ib->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return ib;
}

void eng_inbox_free(eng_inbox *ib) {
    if (ib == NULL) return;
    /* messages left (a stop with work queued): their events are freed here,
     * on the thread that owns them */
    for (eng_msg *m = eng_inbox_take(ib), *next; m; m = next) {
        next = m->next;
        if (m->kind == MSG_CALL) m->call(NULL, m->call_ud);   /* tell its poster: not done */
        eng_batch_free_events(&m->batch);
        free(m);
    }
    if (ib->wake_fd >= 0) close(ib->wake_fd);
    pthread_mutex_destroy(&ib->mu);
    free(ib);
}

void eng_post(eng_inbox *ib, eng_msg *m) {
    m->next = NULL;
    pthread_mutex_lock(&ib->mu);
    if (ib->tail) ib->tail->next = m; else ib->head = m;
    ib->tail = m;
    pthread_mutex_unlock(&ib->mu);
    atomic_store(&ib->mail, 1);
    if (!atomic_load(&ib->sleeping)) return;
    eng_inbox_wake(ib);
}

void cairn_engine_call(cairn_engine *e, cairn_engine_call_fn fn, void *ud) {
    eng_msg *m = cairn_calloc(1, sizeof *m);
    m->kind = MSG_CALL;
    m->call = fn;
    m->call_ud = ud;
    eng_post(e->inbox, m);
}

void eng_inbox_wake(eng_inbox *ib) {
    uint64_t one = 1;
    if (write(ib->wake_fd, &one, sizeof one) < 0) { /* the counter is full: already awake */ }
}

bool eng_inbox_has_mail(eng_inbox *ib) { return atomic_load(&ib->mail) != 0; }

eng_msg *eng_inbox_take(eng_inbox *ib) {
    atomic_store(&ib->mail, 0);
    pthread_mutex_lock(&ib->mu);
    eng_msg *m = ib->head;
    ib->head = ib->tail = NULL;
    pthread_mutex_unlock(&ib->mu);
    return m;
}

/* Poll the wake-up descriptor for up to timeout_ms; true when woken. */
static bool sleep_on_wake_fd(eng_inbox *ib, int timeout_ms) {
    struct pollfd pfd = {.fd = ib->wake_fd, .events = POLLIN};
    if (poll(&pfd, 1, timeout_ms) <= 0) return false;
    uint64_t n;
    if (read(ib->wake_fd, &n, sizeof n) < 0) { /* EAGAIN: drained already */ }
    return true;
}

void eng_inbox_wait(eng_inbox *ib, int timeout_ms, int idle_ms, void (*idle)(void *), void *ud) {
    atomic_store(&ib->sleeping, 1);
    if (!atomic_load(&ib->mail)) {
        int first = idle && timeout_ms > idle_ms ? idle_ms : timeout_ms;
        if (!sleep_on_wake_fd(ib, first) && first < timeout_ms) {
            idle(ud);
            sleep_on_wake_fd(ib, timeout_ms - first);
        }
    }
    atomic_store(&ib->sleeping, 0);
}

/* Spinning pays when the hand-off comes sooner than a sleeping thread
 * would wake (tens of microseconds here), and costs when another thread
 * wants the CPU: with two cores, three threads spinning beside an
 * orchestrator that is never idle (W2) spent more time in their yields than
 * it spent on steps, each yield lasting a whole time slice of someone
 * else's.  So each place keeps its own budget: about twice the waits it
 * sees, never above CAIRN_SPIN_US; halved when a spin ends empty; and a
 * yield that comes back late ends the spin at once. */
bool eng_spin_for(eng_spinner *s, atomic_int *flag) {
    if (s->budget_us == 0) s->budget_us = CAIRN_SPIN_US;
    int64_t start = cairn_now_us(), now = start, until = start + s->budget_us;
    bool late = false;
    while (!atomic_load(flag) && now < until && !late) {
        sched_yield();
        int64_t back = cairn_now_us();
        late = back - now > CAIRN_SPIN_LATE_US;
        now = back;
    }
    bool hit = atomic_load(flag) != 0;
    int want = hit ? 2 * (int)(now - start) : s->budget_us / 2;
    if (want > CAIRN_SPIN_US) want = CAIRN_SPIN_US;
    s->budget_us = want < CAIRN_SPIN_MIN_US ? CAIRN_SPIN_MIN_US : want;
    return hit;
}

void eng_inbox_spin(eng_inbox *ib) { eng_spin_for(&ib->spin, &ib->mail); }
