/*
 * expr_guard.h - the bound on one jq evaluation: a watchdog thread halts jq's
 * interpreter when an evaluation runs past its time or grows the process's
 * memory past its budget.
 *
 * Why it works: libjq 1.6 tests its `halted` flag between any two bytecode
 * instructions (the top of jq_next's loop), and jq_start clears it.  So
 * jq_halt, called from another thread on a jq_state that is evaluating,
 * makes jq_next return within one instruction, and the state serves the
 * next jq_start as if nothing happened (tests/unit/test_expr.c checks both
 * against the libjq Cairn links with).  No jv value crosses threads: the
 * watchdog passes jv_invalid() to jq_halt, a constant that owns no memory.
 * The flag is a plain int that jq reads without a lock while the watchdog
 * stores 1 into it: an aligned int store, seen by the next read.
 *
 * Protocol: the evaluating thread calls cairn_exprguard_arm after jq_start
 * (which would clear a halt made before it) and cairn_exprguard_disarm when
 * jq_next has returned for the last time.  The watchdog halts a state only
 * under the guard's lock and only while it is armed, so once disarm returns
 * the state belongs to its thread alone.  Each thread that evaluates has a
 * slot of its own (several engines may run in one process); a slot is freed
 * when its thread ends.  A child of fork() starts a watchdog of its own
 * when it first arms.
 *
 * The bounds:
 *   time    monotonic time since arming; the watchdog wakes at the deadline.
 *   memory  growth of the process's resident set (/proc/self/statm), sampled
 *           every CAIRN_EXPR_GUARD_TICK_MS while something is armed, over
 *           the last sample taken before the evaluation began.  It counts
 *           every thread's memory, so set a budget with room to spare; an
 *           evaluation may overshoot by what it allocates in one tick.
 * The watchdog sleeps when nothing was armed for CAIRN_EXPR_GUARD_IDLE_MS,
 * and costs an idle engine nothing.
 *
 * What it cannot stop: one builtin that runs long inside C (between two
 * instructions) is halted only when it returns.  expr.c keeps the one that
 * grows without bound from a small input (string repetition, `"x" * 1e9`)
 * within the memory budget; see expr.c for what remains.
 */
#ifndef CAIRN_EXPR_GUARD_H
#define CAIRN_EXPR_GUARD_H

#include <jq.h>
#include <stdint.h>

#define CAIRN_EXPR_GUARD_TICK_MS 10      /* memory sampling period while armed */
#define CAIRN_EXPR_GUARD_IDLE_MS 1000    /* the watchdog sleeps after this long idle */

typedef enum {
    CAIRN_GUARD_OK = 0,     /* the evaluation ended by itself */
    CAIRN_GUARD_TIME,       /* halted: it ran past its time */
    CAIRN_GUARD_MEMORY      /* halted: memory grew past its budget */
} cairn_guard_verdict;

/* Watch jq (borrowed) from now for at most time_ms and memory_bytes of
 * growth.  The calling thread must not have a state armed already.  Starts
 * the watchdog thread the first time (aborts if it cannot: a bound that is
 * not enforced must not be trusted). */
void cairn_exprguard_arm(jq_state *jq, int64_t time_ms, int64_t memory_bytes);

/* Stop watching the calling thread's state; says whether it was halted.
 * After a halt, jq_next has returned jv_invalid() (no message) and the
 * caller must not trust what the evaluation yielded. */
cairn_guard_verdict cairn_exprguard_disarm(void);

#endif
