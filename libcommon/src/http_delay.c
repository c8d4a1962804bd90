/*
 * Injected latency without blocking a worker: the request's connection is
 * suspended and a timer thread resumes it when the delay is over, upon
 * which libmicrohttpd calls the access handler again and the request goes
 * on to its handler (or its injected error). A worker meanwhile serves its
 * other connections, so /healthz keeps answering during a latency fault.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "http_internal.h"
#include "common/banned.h"

struct delay_entry {
    struct delay_entry *next;
    uint64_t due_ns;
    struct MHD_Connection *conn;
};

static void *timer_main(void *arg)
{
    struct http_delays *d = arg;
    pthread_mutex_lock(&d->lock);
    while (!d->stop) {
        uint64_t now = http_now_ns();
        while (d->list && (d->list->due_ns <= now || d->flush)) {
            struct delay_entry *e = d->list;
            d->list = e->next;
            MHD_resume_connection(e->conn);
            free(e);
        }
        d->flush = 0;
        if (!d->list) {
            pthread_cond_wait(&d->cond, &d->lock);
            continue;
        }
        /* CLOCK_MONOTONIC condvar (see http_delays_init). */
        uint64_t due = d->list->due_ns;
        struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
        pthread_cond_timedwait(&d->cond, &d->lock, &ts);
    }
    while (d->list) { /* never leave a connection parked */
        struct delay_entry *e = d->list;
        d->list = e->next;
        MHD_resume_connection(e->conn);
        free(e);
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}

void http_delays_init(struct http_delays *d)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&d->lock, NULL);
    d->list = NULL;
    d->running = d->stop = d->flush = d->closed = 0;
}

int http_delay_park(struct http_delays *d, struct MHD_Connection *conn, int ms)
{
    struct delay_entry *e = malloc(sizeof *e);
    if (!e)
        return -1;
    e->conn = conn;
    e->due_ns = http_now_ns() + (uint64_t)ms * 1000000u;
    pthread_mutex_lock(&d->lock);
    if (d->closed) {
        pthread_mutex_unlock(&d->lock);
        free(e);
        return -1; /* shutting down: no more waiting */
    }
    if (!d->running) {
        if (pthread_create(&d->thread, NULL, timer_main, d) != 0) {
            pthread_mutex_unlock(&d->lock);
            free(e);
            return -1;
        }
        d->running = 1;
    }
    /* Suspend before the timer can see the entry: resuming a connection
     * that is not suspended is an error in libmicrohttpd. */
    MHD_suspend_connection(conn);
    struct delay_entry **pp = &d->list;
    while (*pp && (*pp)->due_ns <= e->due_ns)
        pp = &(*pp)->next;
    e->next = *pp;
    *pp = e;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

void http_delays_flush(struct http_delays *d)
{
    pthread_mutex_lock(&d->lock);
    d->closed = 1;
    d->flush = 1;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
}

void http_delays_stop(struct http_delays *d)
{
    pthread_mutex_lock(&d->lock);
    d->closed = 1;
    d->stop = 1;
    int running = d->running;
    pthread_cond_signal(&d->cond);
    pthread_mutex_unlock(&d->lock);
    if (running)
        pthread_join(d->thread, NULL);
    d->running = 0;
}

void http_delays_release(struct http_delays *d)
{
    pthread_cond_destroy(&d->cond);
    pthread_mutex_destroy(&d->lock);
}
